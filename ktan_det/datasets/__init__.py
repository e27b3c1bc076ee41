from .synthetic import CLASSES, generate_dataset, render_image
from .synthetic_coco import SyntheticCocoDataset, ensure_synthetic_dataset

__all__ = ['CLASSES', 'SyntheticCocoDataset', 'ensure_synthetic_dataset', 'generate_dataset',
           'render_image']
