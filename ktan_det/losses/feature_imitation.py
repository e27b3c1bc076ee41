"""Feature imitation: pull the student's neck maps toward T2S(teacher) maps."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures.bbox import BaseBoxes, get_box_tensor
from torch import Tensor

NORMALIZE_MODES = (None, 'channel', 'level')


def standardize(feat: Tensor, mode: Optional[str]) -> Tensor:
    """Zero mean, unit variance per sample and channel over positions (``'channel'``), or per
    sample over channels and positions (``'level'``); ``None`` returns ``feat`` unchanged."""
    if mode is None:
        return feat
    if mode not in NORMALIZE_MODES:
        raise ValueError(f'normalize={mode!r}, expected one of {NORMALIZE_MODES}')
    dims = (2, 3) if mode == 'channel' else (1, 2, 3)
    # One fused pass (a third faster than mean and std apart); a 1x1 map gives std 0, not NaN
    # (F.instance_norm, the library's form of 'channel', refuses 1x1 maps).
    std, mean = torch.std_mean(feat, dim=dims, keepdim=True, correction=0)
    return (feat - mean) / (std + 1e-6)


def foreground_masks(gt_bboxes: Sequence[Union[Tensor, BaseBoxes]],
                     feat_shapes: Sequence[torch.Size],
                     input_shape: Sequence[int]) -> List[Tensor]:
    """Masks of the feature cells that a ground-truth box overlaps, one (N, H, W) per level.

    Args:
        gt_bboxes: Per image, (K, 4) boxes in input pixels, ``x1, y1, x2, y2``, as tensors or
            MMDetection box structures (``HorizontalBoxes``, what its pipelines load).
        feat_shapes: Shapes (N, C, H, W) of the feature maps, one per level.
        input_shape: (H, W) of the padded input batch the maps were computed from.
    """
    gt_bboxes = [get_box_tensor(boxes) for boxes in gt_bboxes]
    device = gt_bboxes[0].device
    masks = []
    for n, _, h, w in feat_shapes:
        stride_y, stride_x = input_shape[0] / h, input_shape[1] / w
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        mask = torch.zeros((n, h, w), dtype=torch.bool, device=device)
        for i, boxes in enumerate(gt_bboxes):
            if len(boxes) == 0:
                continue
            c1 = (boxes[:, 0] / stride_x).floor()
            r1 = (boxes[:, 1] / stride_y).floor()
            c2 = torch.maximum((boxes[:, 2] / stride_x).ceil(), c1 + 1)
            r2 = torch.maximum((boxes[:, 3] / stride_y).ceil(), r1 + 1)
            in_cols = (cols >= c1[:, None]) & (cols < c2[:, None])
            in_rows = (rows >= r1[:, None]) & (rows < r2[:, None])
            mask[i] = (in_rows[:, :, None] & in_cols[:, None, :]).any(dim=0)
        masks.append(mask)
    return masks


def foreground_weights(mask: Tensor, fg_weight: float) -> Tensor:
    """``fg_weight`` where ``mask`` is set (inside a ground-truth box), 1 elsewhere, as float."""
    return 1.0 + (fg_weight - 1.0) * mask.float()


@MODELS.register_module()
class FeatureImitationLoss(nn.Module):
    """Per-level mean squared error between student maps and their targets (T2S of the teacher).

    ktan-det's detection adaptation of KTAN's intermediate-representation target: the paper sets
    the teacher's high-level maps as the student's target; the options below are ours.

    Args:
        loss_weight: Weight of the loss.
        normalize: ``None`` compares raw maps; ``'channel'`` standardises each channel of each
            map over its spatial positions, ``'level'`` each map over all its channels and positions
            (both on student and target), so that scale differences between levels and between
            the two networks do not dominate.
        fg_weight: Weight of feature cells inside ground-truth boxes relative to background cells
            (1.0: plain mean; background dominates FPN maps, so values > 1 stress the objects).
        level_weights: Optional weight per level; default equal.
    """

    def __init__(self, loss_weight: float = 1.0, normalize: Optional[str] = None,
                 fg_weight: float = 1.0, level_weights: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        if normalize not in NORMALIZE_MODES:
            raise ValueError(f'FeatureImitationLoss: normalize={normalize!r}, expected one of '
                             f'{NORMALIZE_MODES}')
        if fg_weight <= 0:
            raise ValueError(f'FeatureImitationLoss: fg_weight={fg_weight} must be positive')
        self.loss_weight = loss_weight
        self.normalize = normalize
        self.fg_weight = fg_weight
        self.level_weights = level_weights

    def level_distances(self, student_feats: Sequence[Tensor], target_feats: Sequence[Tensor],
                        fg_masks: Optional[Sequence[Tensor]] = None) -> List[Tensor]:
        """Unweighted distance per level (what :meth:`forward` averages)."""
        if len(student_feats) != len(target_feats):
            raise ValueError(f'FeatureImitationLoss: {len(student_feats)} student levels but '
                             f'{len(target_feats)} targets')
        distances = []
        for i, (student, target) in enumerate(zip(student_feats, target_feats)):
            if student.shape != target.shape:
                raise ValueError(f'FeatureImitationLoss: level {i} student map '
                                 f'{tuple(student.shape)} vs target {tuple(target.shape)}')
            # float32 under autocast too: half-precision statistics and squares lose the
            # small differences this loss is about.
            student = standardize(student.float(), self.normalize)
            target = standardize(target.float(), self.normalize)
            if fg_masks is None or self.fg_weight == 1.0:
                distances.append(F.mse_loss(student, target))
                continue
            squared = (student - target).pow(2).mean(dim=1)
            weight = foreground_weights(fg_masks[i], self.fg_weight)
            distances.append((squared * weight).sum() / weight.sum())
        return distances

    def forward(self, student_feats: Sequence[Tensor], target_feats: Sequence[Tensor],
                fg_masks: Optional[Sequence[Tensor]] = None) -> Tensor:
        """Weighted mean of the level distances.

        Args:
            student_feats: Student maps, one (N, C, H, W) per level.
            target_feats: Targets of the same shapes (T2S outputs, detached by the caller).
            fg_masks: Foreground masks (N, H, W) per level, needed when ``fg_weight != 1``.
        """
        distances = self.level_distances(student_feats, target_feats, fg_masks)
        weights = self.level_weights or [1.0] * len(distances)
        if len(weights) != len(distances):
            raise ValueError(f'FeatureImitationLoss: {len(weights)} level_weights for '
                             f'{len(distances)} levels')
        total = sum(w * d for w, d in zip(weights, distances)) / sum(weights)
        return self.loss_weight * total
