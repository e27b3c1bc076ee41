"""Record what the student computes inside its own ``loss()``, without changing mmdet's code.

Forward hooks on the student's neck, RoI feature extractor and box head capture the neck maps
and the sampled RoIs with their class scores while ``detector.loss()`` runs, so one student
forward serves both the detection losses and the KTAN losses.
"""
from contextlib import contextmanager
from typing import Iterator, List, Optional

import torch.nn as nn
from mmdet.models.roi_heads import StandardRoIHead
from torch import Tensor


class StudentTaps:
    """Forward hooks on a student detector, active only inside :meth:`recording`.

    Attributes set while recording:
        neck_feats: The neck's output maps (all levels).
        rois: The (n, 5) RoIs the RoI head's box branch scored (two-stage detectors).
        cls_scores: The box head's class logits for ``rois`` (two-stage), or the dense head's
            per-level class maps (single-stage).
    """

    def __init__(self, detector: nn.Module) -> None:
        self._active = False
        self._last_rois: Optional[Tensor] = None
        self.neck_feats: Optional[List[Tensor]] = None
        self.rois: Optional[Tensor] = None
        self.cls_scores = None
        detector.neck.register_forward_hook(self._on_neck)
        roi_head = getattr(detector, 'roi_head', None)
        if isinstance(roi_head, StandardRoIHead):
            roi_head.bbox_roi_extractor.register_forward_hook(self._on_roi_extractor)
            roi_head.bbox_head.register_forward_hook(self._on_roi_box_head)
        elif getattr(detector, 'bbox_head', None) is not None:
            detector.bbox_head.register_forward_hook(self._on_dense_head)

    @contextmanager
    def recording(self) -> Iterator['StudentTaps']:
        self.neck_feats = self.rois = self.cls_scores = self._last_rois = None
        self._active = True
        try:
            yield self
        finally:
            self._active = False

    def _on_neck(self, module, args, output) -> None:
        if self._active:
            self.neck_feats = list(output)

    def _on_roi_extractor(self, module, args, output) -> None:
        if self._active:
            self._last_rois = args[1]

    def _on_roi_box_head(self, module, args, output) -> None:
        # The first box-head call of a loss() is the box branch; keep its RoIs and scores.
        if self._active and self.cls_scores is None:
            self.rois, self.cls_scores = self._last_rois, output[0]

    def _on_dense_head(self, module, args, output) -> None:
        if self._active:
            self.cls_scores = output[0]
