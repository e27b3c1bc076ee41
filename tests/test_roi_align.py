"""GatherRoIAlign computes mmcv's RoIAlign: same values and gradients, boundary rules too."""
import pytest
import torch
from mmcv.ops import RoIAlign
from mmdet.registry import MODELS
from mmengine.registry import init_default_scope

from ktan_det.models import GatherRoIAlign


def _rois(num_images, count, size, seed=0):
    """RoIs of every kind: tiny, large, partly and wholly outside the map, degenerate."""
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(count, 2, generator=generator) * (size + 20) - 10
    extent = torch.rand(count, 2, generator=generator) * size * 0.8
    extent[: count // 8] *= 0.02  # sub-pixel boxes
    rois = torch.cat([torch.randint(0, num_images, (count, 1), generator=generator).float(),
                      corner, corner + extent], 1)
    rois[-1, 1:] = torch.tensor([2 * size, 2 * size, 2 * size + 5, 2 * size + 5])  # outside
    return rois


@pytest.mark.parametrize('sampling_ratio,aligned,scale', [(0, True, 0.25), (2, True, 0.125),
                                                          (0, False, 0.25), (1, False, 0.5)])
def test_same_values_and_gradients_as_mmcv(sampling_ratio, aligned, scale):
    feat = torch.randn(3, 16, 20, 24, requires_grad=True)
    rois = _rois(3, 200, int(24 / scale))
    ours = GatherRoIAlign(7, scale, sampling_ratio, aligned=aligned)(feat, rois)
    mmcv = RoIAlign(7, scale, sampling_ratio, aligned=aligned)(feat, rois)
    assert ours.shape == mmcv.shape == (200, 16, 7, 7)
    assert torch.allclose(ours, mmcv, atol=1e-5)
    assert ours[-1].abs().max() == 0  # wholly outside: zeros, as mmcv gives
    grad = torch.randn_like(mmcv)
    ours_grad, = torch.autograd.grad(ours, feat, grad)
    mmcv_grad, = torch.autograd.grad(mmcv, feat, grad)
    assert torch.allclose(ours_grad, mmcv_grad, atol=1e-5)


def test_no_rois_half_precision_and_max_pooling():
    feat = torch.randn(2, 8, 10, 10)
    assert GatherRoIAlign(7, 0.25)(feat, torch.zeros(0, 5)).shape == (0, 8, 7, 7)
    rois = _rois(2, 20, 40)
    half = GatherRoIAlign(7, 0.25)(feat.half(), rois)
    assert half.dtype == torch.half
    assert torch.allclose(half.float(), GatherRoIAlign(7, 0.25)(feat.half().float(), rois),
                          atol=1e-3)
    with pytest.raises(ValueError, match="pool_mode='avg' only"):
        GatherRoIAlign(7, 0.25, pool_mode='max')


def test_the_extractor_gives_single_roi_extractors_features():
    init_default_scope('mmdet')
    cfg = dict(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
               out_channels=8, featmap_strides=[4, 8, 16, 32])
    ours = MODELS.build(dict(cfg, type='GatherRoIExtractor'))
    mmdet = MODELS.build(dict(cfg, type='SingleRoIExtractor'))
    feats = [torch.randn(2, 8, 96 // s, 96 // s) for s in (4, 8, 16, 32)]
    rois = _rois(2, 60, 96)
    assert torch.allclose(ours(feats, rois), mmdet(feats, rois), atol=1e-5)
    with pytest.raises(ValueError, match='replaces RoIAlign'):
        MODELS.build(dict(cfg, type='GatherRoIExtractor', roi_layer=dict(type='RoIPool',
                                                                          output_size=7)))
