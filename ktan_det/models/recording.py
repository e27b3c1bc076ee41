"""Record what a detector computes inside its own ``loss()``, without changing mmdet's code.

Forward hooks live only for one ``with`` block: :func:`record_student` captures the student's
neck maps, its RPN's objectness and its sampled RoIs with their class scores while
``detector.loss()`` runs, so one student forward serves both its detection losses and the KTAN
losses.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmdet.models.roi_heads import StandardRoIHead
from torch import Tensor


@contextmanager
def scoped_forward_hooks(hooks: Sequence[Tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Register ``(module, hook)`` forward hooks for the block only."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@dataclass
class StudentRecord:
    """What the student computed in one ``loss()``.

    Attributes:
        neck_feats: The neck's output maps (all levels).
        rois: The (n, 5) RoIs its box branch scored (two-stage detectors), else ``None``.
        cls_scores: The box head's class logits for ``rois`` (two-stage), or the dense head's
            per-level class maps (single-stage).
        objectness: The RPN's per-level objectness logit maps (two-stage), else ``None``.
    """
    neck_feats: Optional[List[Tensor]] = None
    rois: Optional[Tensor] = None
    cls_scores: Optional[object] = None
    objectness: Optional[List[Tensor]] = None


@contextmanager
def record_student(detector: nn.Module) -> Iterator[StudentRecord]:
    """Record the neck maps and class scores of ``detector`` (unwrapped) inside the block."""
    record = StudentRecord()
    last_rois = []

    def on_neck(module, args, output):
        record.neck_feats = list(output)

    def on_roi_extractor(module, args, output):
        last_rois[:] = [args[1]]

    def on_roi_box_head(module, args, output):
        # The first box-head call of a loss() is the box branch; keep its RoIs and scores.
        if record.cls_scores is None:
            record.rois, record.cls_scores = last_rois[0], output[0]

    def on_dense_head(module, args, output):
        record.cls_scores = output[0]

    def on_rpn_head(module, args, output):
        record.objectness = output[0]

    hooks = [(detector.neck, on_neck)]
    roi_head = getattr(detector, 'roi_head', None)
    if isinstance(roi_head, StandardRoIHead):
        hooks += [(roi_head.bbox_roi_extractor, on_roi_extractor),
                  (roi_head.bbox_head, on_roi_box_head)]
        if getattr(detector, 'rpn_head', None) is not None:
            hooks.append((detector.rpn_head, on_rpn_head))
    elif getattr(detector, 'bbox_head', None) is not None:
        hooks.append((detector.bbox_head, on_dense_head))
    with scoped_forward_hooks(hooks):
        yield record
