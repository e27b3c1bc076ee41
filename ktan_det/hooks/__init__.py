from .distill_monitor import DistillationMonitorHook
from .loss_weight_schedule import KTANLossWeightHook
from .random_state import RandomStateHook
from .student_export import StudentExportHook
from .teacher_guard import TeacherGuardHook

__all__ = ['DistillationMonitorHook', 'KTANLossWeightHook', 'RandomStateHook',
           'StudentExportHook', 'TeacherGuardHook']
