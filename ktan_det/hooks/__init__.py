from .distill_monitor import DiscriminatorMonitorHook, DistillationMonitorHook
from .finite_weights import FiniteWeightsHook
from .loss_weight_schedule import KTANLossWeightHook
from .random_state import RandomStateHook
from .student_export import StudentExportHook
from .teacher_guard import (
                            TeacherCheckHook,
                            TeacherEvalHook,
                            TeacherFreezeHook,
                            TeacherGuardHook,
                            TeacherRecordHook,
)

__all__ = ['DiscriminatorMonitorHook', 'DistillationMonitorHook', 'FiniteWeightsHook',
           'KTANLossWeightHook', 'RandomStateHook', 'StudentExportHook', 'TeacherCheckHook',
           'TeacherEvalHook', 'TeacherFreezeHook', 'TeacherGuardHook', 'TeacherRecordHook']
