from .optim_constructor import KTANOptimWrapperConstructor

__all__ = ['KTANOptimWrapperConstructor']
