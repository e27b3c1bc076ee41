"""Patch discriminator: tells T2S(teacher) feature maps from student feature maps, per patch."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..losses import standardize


def _patch_net(in_channels: int, base_channels: int, num_convs: int,
               norm_cfg: Optional[dict], spectral_norm: bool) -> nn.Sequential:
    layers, channels = [], in_channels
    for i in range(num_convs):
        out = base_channels * 2**i
        # No normalisation on the first layer: it would erase the input statistics to be judged.
        layers.append(ConvModule(channels, out, 3, stride=2, padding=1,
                                 norm_cfg=norm_cfg if i > 0 else None,
                                 act_cfg=dict(type='LeakyReLU', negative_slope=0.2)))
        channels = out
    layers.append(nn.Conv2d(channels, 1, 3, padding=1))
    net = nn.Sequential(*layers)
    if spectral_norm:
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(module)
    return net


def local_affinity(feat: Tensor, kernel_size: int = 3, dilation: int = 1) -> Tensor:
    """Cosine similarity of each position's feature vector with each of its neighbours in a
    ``kernel_size`` x ``kernel_size`` window (``dilation`` apart), neighbours in raster order
    without the centre, as (N, k*k - 1, H, W): the map's local spatial correlation, blind to a
    common scale of its channels and to their order. Positions past the border count as zero
    vectors (similarity 0)."""
    h, w = feat.shape[-2:]
    unit = F.normalize(feat.float(), dim=1)
    pad = dilation * (kernel_size // 2)
    padded = F.pad(unit, (pad, pad, pad, pad))
    # One neighbour at a time: memory of a few maps, where unfolding the window would hold
    # k*k copies of the map (gigabytes on a COCO-sized P2 level).
    similarities = [(unit * padded[..., dy:dy + h, dx:dx + w]).sum(1)
                    for dy in range(0, 2 * pad + 1, dilation)
                    for dx in range(0, 2 * pad + 1, dilation) if (dy, dx) != (pad, pad)]
    return torch.stack(similarities, dim=1)


VIEWS = ('maps', 'affinity', 'conditional')
IMAGE_CHANNELS = 3  # what the conditional view adds: the input image
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
        view: What the discriminator judges of each (standardised) map, ktan-det's options:
            ``'maps'`` the map itself; ``'affinity'`` only its local spatial correlation
            (:func:`local_affinity`, ``affinity_kernel`` and ``affinity_dilation``), so that a
            student is judged on how its positions relate, not on its channels;
            ``'conditional'`` the map beside the input image it was computed from, shrunk to
            the map's size (:meth:`forward`'s ``images``), so that it judges whether a map
            fits its image (as pix2pix's discriminator does) rather than whether it looks like
            teacher maps in general.
        spectral_norm: Spectral normalisation of every conv (ktan-det's option), a stabiliser
            that bounds how sharply the discriminator's verdict can change with its input, so
            its gradient on the student stays smooth. ``init_cfg`` is not used then
            (MMEngine's initialisers cannot reach parametrised weights; the normalisation
            rescales them anyway), and the checkpoints' keys differ from those without.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self, in_channels: int, num_levels: int, base_channels: int = 64,
                 num_convs: int = 2, shared: bool = True,
                 norm_cfg: Optional[dict] = DEFAULT_NORM_CFG,
                 input_norm: Optional[str] = None, view: str = 'maps',
                 affinity_kernel: int = 3, affinity_dilation: int = 1,
                 spectral_norm: bool = False, init_cfg: Optional[dict] = DEFAULT_INIT_CFG):
        super().__init__(init_cfg=None if spectral_norm else init_cfg)
        if view not in VIEWS:
            raise ValueError(f'PatchDiscriminator: view={view!r}, expected one of {VIEWS}')
        if affinity_kernel < 3 or affinity_kernel % 2 == 0 or affinity_dilation < 1:
            raise ValueError(f'PatchDiscriminator: affinity_kernel={affinity_kernel} must be '
                             f'odd and at least 3, affinity_dilation={affinity_dilation} at '
                             'least 1')
        self.num_levels = num_levels
        self.shared = shared
        self.input_norm = input_norm
        self.view = view
        self.affinity_kernel = affinity_kernel
        self.affinity_dilation = affinity_dilation
        judged = dict(maps=in_channels, affinity=affinity_kernel**2 - 1,
                      conditional=in_channels + IMAGE_CHANNELS)[view]
        self.nets = nn.ModuleList(
            _patch_net(judged, base_channels, num_convs, norm_cfg, spectral_norm)
            for _ in range(1 if shared else num_levels))

    @property
    def conditional(self) -> bool:
        return self.view == 'conditional'

    def forward(self, feats: Sequence[Tensor], images: Optional[Tensor] = None) -> List[Tensor]:
        """Logit maps (N, 1, h, w), one per input level.

        Args:
            feats: The judged maps, (N, C, H, W) per level.
            images: With ``view='conditional'``, the (N, 3, H_in, W_in) preprocessed input
                batch each map was computed from.
        """
        if len(feats) != self.num_levels:
            raise ValueError(f'PatchDiscriminator: built for {self.num_levels} levels, '
                             f'got {len(feats)}')
        if self.conditional != (images is not None):
            raise ValueError("PatchDiscriminator: images are given exactly when "
                             f"view='conditional' (view={self.view!r})")
        return [self.nets[0 if self.shared else i](self._view(feat, images))
                for i, feat in enumerate(feats)]

    def _view(self, feat: Tensor, images: Optional[Tensor]) -> Tensor:
        feat = standardize(feat, self.input_norm)
        if self.view == 'affinity':
            return local_affinity(feat, self.affinity_kernel, self.affinity_dilation)
        if self.view == 'conditional':
            image = F.interpolate(images.to(feat.dtype), size=feat.shape[-2:], mode='area')
            return torch.cat([image, feat], dim=1)
        return feat
