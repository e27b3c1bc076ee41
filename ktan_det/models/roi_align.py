"""RoIAlign as one weighted gather, for CPU training (ktan-det's).

mmcv's CPU RoIAlign loops over every output element on one thread, forward and backward; on
the synthetic benchmark it is a fifth of a Faster R-CNN student's step. The same numbers come
from a weighted gather: every output element is a weighted sum of at most four feature-map
rows per sampling point (bilinear interpolation, averaged over the bin's sampling points), so
``F.embedding_bag`` over the map's (position, channel) rows computes it, and its backward pass
is a scatter-add, both vectorised. Same inputs, same outputs as mmcv's ``RoIAlign`` (average
pooling) to float rounding, boundary rules included.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS
from torch import Tensor


def _axis_samples(start: Tensor, bin_size: Tensor, grid: Tensor, bins: int, most: int,
                  size: int) -> Tuple[Tensor, ...]:
    """Per RoI, bin and sampling point along one axis: the two neighbouring map indices, their
    interpolation weights and whether the point counts (mmcv's ``bilinear_interpolate``:
    points beyond one pixel outside the map are 0, the rest clamped to its edge)."""
    point = torch.arange(most, dtype=start.dtype, device=start.device)
    bin_index = torch.arange(bins, dtype=start.dtype, device=start.device)
    coord = (start[:, None, None] + bin_index[None, :, None] * bin_size[:, None, None]
             + (point[None, None, :] + 0.5) * bin_size[:, None, None] / grid[:, None, None])
    valid = (point[None, None, :] < grid[:, None, None]) & (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().long()
    at_edge = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    frac = torch.where(at_edge, torch.zeros_like(coord), coord - low)
    return low, high, 1 - frac, frac, valid


def roi_align_by_gather(feat: Tensor, rois: Tensor, output_size: Tuple[int, int],
                        spatial_scale: float, sampling_ratio: int = 0,
                        aligned: bool = True) -> Tensor:
    """mmcv's ``roi_align`` with average pooling, as a weighted gather.

    Args:
        feat: (N, C, H, W) feature maps.
        rois: (K, 5) RoIs ``(batch index, x1, y1, x2, y2)`` in image coordinates.
        output_size: ``(pooled height, pooled width)``.
        spatial_scale: Map size over image size.
        sampling_ratio: Sampling points per bin and axis; 0 for ``ceil(RoI size / bins)``.
        aligned: Shift the RoI by half a pixel (Detectron2's aligned RoIAlign).

    Returns:
        (K, C, pooled height, pooled width), in ``feat``'s dtype.
    """
    num, channels, height, width = feat.shape
    bins_h, bins_w = output_size
    if rois.shape[0] == 0:
        return feat.new_zeros((0, channels, bins_h, bins_w))
    rois = rois.float()  # coordinates in float32 whatever the maps' dtype (autocast)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full_like(roi_h, float(sampling_ratio))
    else:
        grid_h = torch.ceil(roi_h / bins_h).clamp(min=1)
        grid_w = torch.ceil(roi_w / bins_w).clamp(min=1)
    most = int(max(grid_h.max(), grid_w.max()))
    y_low, y_high, wy_low, wy_high, valid_y = _axis_samples(y1, roi_h / bins_h, grid_h, bins_h,
                                                            most, height)
    x_low, x_high, wx_low, wx_high, valid_x = _axis_samples(x1, roi_w / bins_w, grid_w, bins_w,
                                                            most, width)

    def along_y(t):  # (K, bins_h, most) -> (K, bins_h, 1, most, 1)
        return t[:, :, None, :, None]

    def along_x(t):  # (K, bins_w, most) -> (K, 1, bins_w, 1, most)
        return t[:, None, :, None, :]

    row = rois[:, 0].long()[:, None, None, None, None] * (height * width)
    corners = [(y_low, wy_low, x_low, wx_low), (y_low, wy_low, x_high, wx_high),
               (y_high, wy_high, x_low, wx_low), (y_high, wy_high, x_high, wx_high)]
    index = torch.stack([row + along_y(y) * width + along_x(x) for y, _, x, _ in corners], -1)
    weight = torch.stack([along_y(wy) * along_x(wx) for _, wy, _, wx in corners], -1)
    count = (grid_h * grid_w)[:, None, None, None, None, None]
    weight = weight * (along_y(valid_y) & along_x(valid_x))[..., None] / count
    table = feat.permute(0, 2, 3, 1).reshape(num * height * width, channels)
    per_bin = 4 * most * most  # corners of every sampling point of one output element
    pooled = F.embedding_bag(index.reshape(-1, per_bin), table.float(),
                             per_sample_weights=weight.reshape(-1, per_bin), mode='sum')
    return pooled.view(-1, bins_h, bins_w, channels).permute(0, 3, 1, 2).to(feat.dtype)


class GatherRoIAlign(nn.Module):
    """Drop-in for mmcv's ``RoIAlign`` (average pooling) computed by :func:`roi_align_by_gather`;
    same arguments."""

    def __init__(self, output_size: Union[int, Sequence[int]], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, pool_mode: str = 'avg', aligned: bool = True,
                 use_torchvision: bool = False) -> None:
        super().__init__()
        if pool_mode != 'avg' or use_torchvision:
            raise ValueError("GatherRoIAlign computes mmcv's RoIAlign with pool_mode='avg' "
                             'only; use mmcv\'s RoIAlign for max pooling or torchvision')
        self.output_size = (output_size, output_size) if isinstance(output_size, int) \
            else tuple(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = aligned

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        return roi_align_by_gather(feat, rois, self.output_size, self.spatial_scale,
                                   self.sampling_ratio, self.aligned)


@MODELS.register_module()
class GatherRoIExtractor(SingleRoIExtractor):
    """MMDetection's ``SingleRoIExtractor`` with :class:`GatherRoIAlign` in place of mmcv's
    ``RoIAlign`` (its ``roi_layer`` must name ``RoIAlign``): the same features, faster on a
    CPU."""

    def __init__(self, roi_layer: dict, *args, **kwargs) -> None:
        if roi_layer.get('type') != 'RoIAlign':
            raise ValueError(f'GatherRoIExtractor replaces RoIAlign, not {roi_layer.get("type")}'
                             "; use SingleRoIExtractor for other RoI layers")
        super().__init__(dict(roi_layer, type=GatherRoIAlign), *args, **kwargs)
