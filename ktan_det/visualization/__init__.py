from .feature_maps import (PANELS, feature_panels, image_batch, load_distiller, load_student,
                           reduce_channels)

__all__ = ['PANELS', 'feature_panels', 'image_batch', 'load_distiller', 'load_student',
           'reduce_channels']
