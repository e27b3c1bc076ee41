"""Teacher-to-Student (T2S) layers: map teacher neck maps to the student's shape."""
from typing import List, Optional, Sequence

import torch
import torch.distributed as dist
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
    ``student_channels``, and a 1x1 conv back (``forward(..., round_trip=True)``) so the frozen
    teacher's own heads can judge the mapped maps: the TGN stage trains both with the teacher's
    detection loss, then they are frozen.

    With ``init='pca'`` (ktan-det's default) the TGN stage starts from the best linear
    compression instead of random weights: on the first batch, T2S projects each level onto the
    teacher maps' top ``student_channels`` principal directions and the map back inverts that
    (:meth:`init_from_teacher`), so the round trip already loses little and the short TGN stage
    only has to adapt it to what the teacher's heads need.

    Args:
        teacher_channels: Channels of the teacher's neck maps.
        student_channels: Channels of the student's neck maps.
        num_levels: Number of tapped levels.
        kernel_size: Kernel of the T2S convs (odd).
        norm_cfg: Optional normalisation after each T2S conv.
        identity_when_equal: Use the identity when the widths match.
        init: ``'pca'`` (see above) or ``'random'`` (``init_cfg``/PyTorch defaults only).
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self, teacher_channels: int, student_channels: int, num_levels: int,
                 kernel_size: int = 1, norm_cfg: Optional[dict] = None,
                 identity_when_equal: bool = True, init: str = 'pca',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if kernel_size % 2 != 1:
            raise ValueError(f'T2SAdapters: kernel_size={kernel_size} must be odd')
        if init not in ('pca', 'random'):
            raise ValueError(f"T2SAdapters: init={init!r}, expected 'pca' or 'random'")
        if init == 'pca' and norm_cfg is not None:
            raise ValueError("T2SAdapters: init='pca' needs norm_cfg=None (a norm after the "
                             "projection would undo it); use init='random'")
        self.is_identity = identity_when_equal and teacher_channels == student_channels
        # Persistent, so that a resumed run does not initialise again.
        self.register_buffer('needs_pca_init', torch.tensor(init == 'pca' and not self.is_identity))
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

    @torch.no_grad()
    def init_from_teacher(self, teacher_feats: Sequence[Tensor]) -> None:
        """PCA initialisation from teacher maps (one per level), the same on every rank."""
        for feat, t2s, s2t in zip(teacher_feats, self.t2s, self.s2t):
            channels = feat.shape[1]
            x = feat.transpose(0, 1).reshape(channels, -1).double()
            stats = torch.cat([x.sum(1), (x @ x.T).flatten(),
                               x.new_tensor([x.shape[1]])])
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(stats)
            count = stats[-1]
            mean = stats[:channels] / count
            cov = stats[channels:-1].view(channels, channels) / count - torch.outer(mean, mean)
            _, vectors = torch.linalg.eigh(cov)  # ascending eigenvalues
            top = vectors[:, -t2s.conv.out_channels:].flip(1).T  # (C_s, C_t)
            weight = torch.zeros_like(t2s.conv.weight)
            k = weight.shape[-1] // 2
            weight[:, :, k, k] = top.to(weight.dtype)
            t2s.conv.weight.copy_(weight)
            t2s.conv.bias.copy_((-top @ mean).to(weight.dtype))
            s2t.weight.copy_(top.T[:, :, None, None].to(weight.dtype))
            s2t.bias.copy_(mean.to(weight.dtype))
        self.needs_pca_init.fill_(False)

    def forward(self, teacher_feats: Sequence[Tensor], round_trip: bool = False) -> List[Tensor]:
        """T2S(teacher) maps in the student's shape, or with ``round_trip`` mapped back to the
        teacher's width (the TGN stage's path to the teacher's heads; one call, so a DDP wrapper
        around this module sees both halves)."""
        mapped = [layer(feat) for layer, feat in zip(self.t2s, teacher_feats)]
        if not round_trip:
            return mapped
        return [layer(feat) for layer, feat in zip(self.s2t, mapped)]
