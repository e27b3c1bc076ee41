"""Teacher-to-Student (T2S) layers: map teacher neck maps to the student's shape."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


@MODELS.register_module()
class T2SAdapters(BaseModule):
    """One T2S layer per tapped neck level, plus the maps back to the teacher's width.

    With the teacher, T2S forms KTAN's teacher generative network (TGN). When the widths match
    (and ``identity_when_equal``), T2S is the identity and nothing is trained. Otherwise each level
    gets a ``kernel_size`` conv (+ optional norm) from ``teacher_channels`` to
    ``student_channels``, and a 1x1 conv back (:meth:`to_teacher`) so the frozen teacher's own
    heads can judge the mapped maps: the TGN stage trains both with the teacher's detection loss,
    then they are frozen.

    Args:
        teacher_channels: Channels of the teacher's neck maps.
        student_channels: Channels of the student's neck maps.
        num_levels: Number of tapped levels.
        kernel_size: Kernel of the T2S convs (odd).
        norm_cfg: Optional normalisation after each T2S conv.
        identity_when_equal: Use the identity when the widths match.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self, teacher_channels: int, student_channels: int, num_levels: int,
                 kernel_size: int = 1, norm_cfg: Optional[dict] = None,
                 identity_when_equal: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if kernel_size % 2 != 1:
            raise ValueError(f'T2SAdapters: kernel_size={kernel_size} must be odd')
        self.is_identity = identity_when_equal and teacher_channels == student_channels
        if self.is_identity:
            self.t2s = nn.ModuleList(nn.Identity() for _ in range(num_levels))
            self.s2t = None
            return
        self.t2s = nn.ModuleList(
            ConvModule(teacher_channels, student_channels, kernel_size,
                       padding=kernel_size // 2, norm_cfg=norm_cfg, act_cfg=None)
            for _ in range(num_levels))
        self.s2t = nn.ModuleList(
            nn.Conv2d(student_channels, teacher_channels, 1) for _ in range(num_levels))

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.parameters())

    def freeze(self) -> None:
        """Fix the TGN: no more gradients for T2S and its maps back."""
        self.requires_grad_(False)

    def forward(self, teacher_feats: Sequence[Tensor], round_trip: bool = False) -> List[Tensor]:
        """T2S(teacher) maps in the student's shape, or with ``round_trip`` mapped back to the
        teacher's width (the TGN stage's path to the teacher's heads; one call, so a DDP wrapper
        around this module sees both halves)."""
        mapped = [layer(feat) for layer, feat in zip(self.t2s, teacher_feats)]
        if not round_trip:
            return mapped
        return [layer(feat) for layer, feat in zip(self.s2t, mapped)]
