"""Build-time checks that a teacher and a student can be distilled with the asked-for losses."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.roi_heads import StandardRoIHead
from torch import Tensor

# DetDataPreprocessor's defaults, so that a key left out compares as what it means.
PREPROCESSOR_DEFAULTS = dict(mean=None, std=None, bgr_to_rgb=False, rgb_to_bgr=False)


class DistillationSetupError(ValueError):
    """Teacher and student (or the KTAN config) do not fit together."""


def _as_floats(value):
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else value


def check_preprocessors(teacher_cfg: Optional[dict], student_cfg: Optional[dict]) -> None:
    """Both networks see the same tensors, so they must normalise inputs the same way."""
    for key, default in PREPROCESSOR_DEFAULTS.items():
        t = _as_floats((teacher_cfg or {}).get(key, default))
        s = _as_floats((student_cfg or {}).get(key, default))
        if t != s:
            raise DistillationSetupError(
                f'teacher and student normalise inputs differently: data_preprocessor.{key} is '
                f'{t} for the teacher and {s} for the student; the distiller feeds both the '
                'same tensors, so make them equal')


def check_has_neck(detector: nn.Module, role: str) -> None:
    if not getattr(detector, 'with_neck', False):
        raise DistillationSetupError(
            f'the {role} ({type(detector).__name__}) has no neck: KTAN distils neck (FPN) '
            'feature maps, so both detectors need one')


def neck_num_outs(detector: nn.Module) -> Optional[int]:
    return getattr(detector.neck, 'num_outs', None)


def resolve_tap_levels(levels: Optional[Sequence[int]], teacher: nn.Module,
                       student: nn.Module) -> List[int]:
    """Check the tapped level indices against both necks; ``None`` taps every student level."""
    t_outs, s_outs = neck_num_outs(teacher), neck_num_outs(student)
    if t_outs is not None and s_outs is not None and t_outs != s_outs:
        raise DistillationSetupError(
            f'teacher neck has {t_outs} output levels and student neck {s_outs}: tapped levels '
            'must pair up; give both necks the same num_outs (and start_level)')
    if levels is None:
        if s_outs is None:
            raise DistillationSetupError(
                f'cannot tell how many levels {type(student.neck).__name__} outputs; set '
                'model.tap_levels explicitly')
        return list(range(s_outs))
    levels = list(levels)
    if not levels or len(set(levels)) != len(levels):
        raise DistillationSetupError(f'tap_levels={levels}: must be distinct and non-empty')
    for outs, role in ((t_outs, 'teacher'), (s_outs, 'student')):
        if outs is not None and any(not 0 <= lvl < outs for lvl in levels):
            raise DistillationSetupError(
                f'tap_levels={levels} is out of range: the {role} neck has {outs} levels '
                f'(indices 0..{outs - 1})')
    return levels


def check_matching_maps(teacher_feats: Sequence[Tensor], student_feats: Sequence[Tensor],
                        levels: Sequence[int]) -> None:
    """At run time: each tapped level has the same spatial size (the same stride) in both."""
    for lvl, t, s in zip(levels, teacher_feats, student_feats):
        if t.shape[0] != s.shape[0] or t.shape[-2:] != s.shape[-2:]:
            raise DistillationSetupError(
                f'neck level {lvl}: teacher map {tuple(t.shape)} and student map '
                f'{tuple(s.shape)} differ in batch or spatial size; the necks must have the same '
                'strides (start_level, num_outs, backbone out_indices)')


def _num_classes(head) -> Optional[int]:
    return getattr(head, 'num_classes', None)


def check_classes(teacher: nn.Module, student: nn.Module) -> None:
    for name in ('roi_head', 'bbox_head'):
        t_head, s_head = getattr(teacher, name, None), getattr(student, name, None)
        if name == 'roi_head':
            t_head = getattr(t_head, 'bbox_head', None)
            s_head = getattr(s_head, 'bbox_head', None)
        t, s = _num_classes(t_head), _num_classes(s_head)
        if t is not None and s is not None and t != s:
            raise DistillationSetupError(
                f'teacher predicts {t} classes and student {s}: they must be trained on the '
                'same classes in the same order')


def soft_label_score_type(teacher: nn.Module, student: nn.Module) -> str:
    """The score form soft labels compare for this pair (``'softmax'`` RoI or ``'sigmoid'`` dense),
    after checking that the pair supports them."""
    t_roi, s_roi = getattr(teacher, 'roi_head', None), getattr(student, 'roi_head', None)
    if t_roi is not None or s_roi is not None:
        for role, roi in (('teacher', t_roi), ('student', s_roi)):
            if not isinstance(roi, StandardRoIHead):
                raise DistillationSetupError(
                    f'soft labels support StandardRoIHead two-stage detectors (and dense '
                    f'single-stage heads); the {role} has {type(roi).__name__}. Set '
                    'model.loss_soft=None to distil features only')
            loss_cls = roi.bbox_head.loss_cls
            if type(loss_cls).__name__ != 'CrossEntropyLoss' or loss_cls.use_sigmoid:
                raise DistillationSetupError(
                    f'soft labels on RoIs need a softmax cross-entropy classifier; the {role}\'s '
                    f'box head uses {type(loss_cls).__name__}')
        return 'softmax'
    t_head, s_head = teacher.bbox_head, student.bbox_head
    for role, head in (('teacher', t_head), ('student', s_head)):
        # Anchor-free heads (FCOS, ...) have point priors: no anchors to match scores on.
        if not isinstance(head, AnchorHead) or not head.use_sigmoid_cls:
            raise DistillationSetupError(
                f'dense soft labels need an anchor head with sigmoid class scores; the {role} '
                f'has {type(head).__name__}. Set model.loss_soft=None to distil features only')
    t_anchors, s_anchors = t_head.prior_generator, s_head.prior_generator
    if (t_anchors.strides != s_anchors.strides
            or t_anchors.num_base_priors != s_anchors.num_base_priors
            or any((a != b).any() for a, b in zip(t_anchors.base_anchors,
                                                  s_anchors.base_anchors))):
        raise DistillationSetupError(
            'dense soft labels compare scores anchor by anchor, but teacher and student anchor '
            'generators differ (strides, scales or ratios); give both heads the same '
            'anchor_generator')
    return 'sigmoid'
