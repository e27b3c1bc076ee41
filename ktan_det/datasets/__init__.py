from .glyphs import SyntheticGlyphsDataset, generate_glyph_dataset
from .synthetic import CLASSES, generate_dataset, render_image
from .synthetic_coco import SyntheticCocoDataset, ensure_synthetic_dataset

__all__ = ['CLASSES', 'SyntheticCocoDataset', 'SyntheticGlyphsDataset', 'ensure_synthetic_dataset',
           'generate_dataset', 'generate_glyph_dataset', 'render_image']
