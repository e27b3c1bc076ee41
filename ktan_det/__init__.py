"""ktan-det: KTAN (Knowledge Transfer Adversarial Network) distillation for MMDetection 3.x.

Importing the package registers its datasets, models, losses, hooks and optimizer constructor
in MMDetection's registries, and allow-lists the types MMEngine checkpoints hold for torch's
safe loading.
"""
from . import datasets, engine, hooks, losses, models  # noqa: F401  (registration)
from .utils.safe_load import register_checkpoint_safe_globals
from .version import __version__

register_checkpoint_safe_globals()

__all__ = ['__version__']
