from .discriminator import PatchDiscriminator
from .distiller import KTANDistiller
from .roi_align import GatherRoIAlign, GatherRoIExtractor
from .setup_checks import DistillationSetupError
from .t2s import T2SAdapters
from .teacher import TeacherCheckpointError

__all__ = ['DistillationSetupError', 'GatherRoIAlign', 'GatherRoIExtractor', 'KTANDistiller',
           'PatchDiscriminator', 'T2SAdapters', 'TeacherCheckpointError']
