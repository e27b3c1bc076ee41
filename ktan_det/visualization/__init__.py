from .feature_maps import (
                           feature_panels,
                           image_batch,
                           load_distiller,
                           load_run,
                           load_student,
                           reduce_channels,
)

__all__ = ['feature_panels', 'image_batch', 'load_distiller', 'load_run', 'load_student',
           'reduce_channels']
