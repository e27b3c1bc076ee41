"""Patch discriminator: tells T2S(teacher) feature maps from student feature maps, per patch."""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..losses import standardize


def _patch_net(in_channels: int, base_channels: int, num_convs: int,
               norm_cfg: Optional[dict]) -> nn.Sequential:
    layers, channels = [], in_channels
    for i in range(num_convs):
        out = base_channels * 2**i
        # No normalisation on the first layer: it would erase the input statistics to be judged.
        layers.append(ConvModule(channels, out, 3, stride=2, padding=1,
                                 norm_cfg=norm_cfg if i > 0 else None,
                                 act_cfg=dict(type='LeakyReLU', negative_slope=0.2)))
        channels = out
    layers.append(nn.Conv2d(channels, 1, 3, padding=1))
    return nn.Sequential(*layers)


DEFAULT_NORM_CFG = dict(type='GN', num_groups=8)
DEFAULT_INIT_CFG = dict(type='Normal', layer='Conv2d', std=0.02)


@MODELS.register_module()
class PatchDiscriminator(BaseModule):
    """Fully convolutional discriminator giving a map of real/fake logits per feature map.

    Strided 3x3 convs with LeakyReLU (and normalisation after the first) shrink each map by
    ``2**num_convs``; a last 3x3 conv gives one logit per patch, so it judges local spatial
    structure, the "spatial correlation of feature maps" KTAN's discriminator exploits. Depth,
    width and sharing are ktan-det's choices.

    Args:
        in_channels: Channels of the judged maps (the student's neck width).
        num_levels: Number of neck levels judged.
        base_channels: Width of the first conv; doubled at each further conv.
        num_convs: Number of strided convs.
        shared: One network for every level (default) or one per level.
        norm_cfg: Normalisation after every strided conv but the first. Group norm by default:
            batch norm would mix real and fake batches' statistics.
        input_norm: Standardise each map before judging it (``'channel'`` or ``'level'``, as
            :func:`~ktan_det.losses.standardize`), so that the discriminator judges spatial
            structure rather than a scale difference the student cannot easily close.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self, in_channels: int, num_levels: int, base_channels: int = 64,
                 num_convs: int = 2, shared: bool = True,
                 norm_cfg: Optional[dict] = DEFAULT_NORM_CFG,
                 input_norm: Optional[str] = None,
                 init_cfg: Optional[dict] = DEFAULT_INIT_CFG):
        super().__init__(init_cfg=init_cfg)
        self.num_levels = num_levels
        self.shared = shared
        self.input_norm = input_norm
        self.nets = nn.ModuleList(
            _patch_net(in_channels, base_channels, num_convs, norm_cfg)
            for _ in range(1 if shared else num_levels))

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Logit maps (N, 1, h, w), one per input level."""
        if len(feats) != self.num_levels:
            raise ValueError(f'PatchDiscriminator: built for {self.num_levels} levels, '
                             f'got {len(feats)}')
        return [self.nets[0 if self.shared else i](standardize(feat, self.input_norm))
                for i, feat in enumerate(feats)]
