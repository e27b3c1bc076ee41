import pytest
import torch

from ktan_det.models import PatchDiscriminator, T2SAdapters
from ktan_det.models.discriminator import local_affinity


def test_t2s_maps_teacher_width_to_student_width_and_back():
    t2s = T2SAdapters(teacher_channels=32, student_channels=16, num_levels=2, kernel_size=3)
    feats = [torch.randn(2, 32, 8, 8), torch.randn(2, 32, 4, 4)]
    mapped = t2s(feats)
    assert [tuple(f.shape) for f in mapped] == [(2, 16, 8, 8), (2, 16, 4, 4)]
    back = t2s(feats, round_trip=True)
    assert [tuple(f.shape) for f in back] == [(2, 32, 8, 8), (2, 32, 4, 4)]
    assert t2s.trainable and not t2s.is_identity
    t2s.freeze()
    assert not t2s.trainable


def test_t2s_is_a_parameter_free_identity_when_widths_match():
    t2s = T2SAdapters(teacher_channels=16, student_channels=16, num_levels=2)
    feats = [torch.randn(1, 16, 4, 4), torch.randn(1, 16, 2, 2)]
    assert t2s.is_identity and not t2s.trainable and not list(t2s.parameters())
    assert all(a is b for a, b in zip(t2s(feats), feats))
    learnt = T2SAdapters(16, 16, 2, identity_when_equal=False)
    assert not learnt.is_identity and learnt.trainable


def test_t2s_rejects_even_kernels():
    with pytest.raises(ValueError, match='odd'):
        T2SAdapters(8, 4, 1, kernel_size=2)


@pytest.mark.parametrize('shared', [True, False])
def test_discriminator_gives_one_logit_map_per_level(shared):
    disc = PatchDiscriminator(in_channels=16, num_levels=3, base_channels=8, num_convs=2,
                              shared=shared)
    feats = [torch.randn(2, 16, 32, 32), torch.randn(2, 16, 16, 16), torch.randn(2, 16, 3, 3)]
    maps = disc(feats)
    assert [tuple(m.shape) for m in maps] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 1, 1)]
    assert len(disc.nets) == (1 if shared else 3)
    with pytest.raises(ValueError, match='3 levels'):
        disc(feats[:2])


def test_discriminator_patches_see_local_structure():
    # Without normalisation (whose statistics span the whole map) each logit sees a local patch.
    disc = PatchDiscriminator(in_channels=4, num_levels=1, base_channels=8, num_convs=2,
                              norm_cfg=None)
    disc.init_weights()
    feat = torch.zeros(1, 4, 32, 32)
    base = disc([feat])[0]
    feat[..., 0:4, 0:4] = 5.0  # a change in one corner moves only nearby patches
    changed = (disc([feat])[0] - base).abs()[0, 0] > 1e-6
    assert changed[0, 0] and not changed[-1, -1]


def test_local_affinity_is_the_cosine_similarity_with_each_neighbour():
    # One row of three positions: two alike, the third orthogonal to them.
    feat = torch.tensor([[[[1.0, 2.0, 0.0]], [[0.0, 0.0, 3.0]]]])  # (1, 2, 1, 3)
    affinity = local_affinity(feat)
    assert affinity.shape == (1, 8, 1, 3)
    # Neighbours in raster order without the centre: index 3 is the left one, 4 the right.
    assert affinity[0, :, 0, 1].tolist() == pytest.approx([0, 0, 0, 1, 0, 0, 0, 0])
    assert affinity[0, :, 0, 0].tolist() == pytest.approx([0, 0, 0, 0, 1, 0, 0, 0])
    # Blind to a common scale of the channels and to their order.
    feat = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(local_affinity(feat[:, [3, 1, 5, 0, 2, 4]] * 7.0),
                               local_affinity(feat))
    # Dilation 2: the first neighbour is the position 2 rows up and 2 columns left.
    wide = local_affinity(feat, kernel_size=3, dilation=2)
    assert wide.shape == (2, 8, 5, 5)
    assert local_affinity(feat, kernel_size=5).shape == (2, 24, 5, 5)
    unit = torch.nn.functional.normalize(feat, dim=1)
    torch.testing.assert_close(wide[:, 0, 2:, 2:], (unit[..., 2:, 2:] * unit[..., :3, :3]).sum(1))


@pytest.mark.parametrize('view', ['affinity', 'conditional'])
def test_discriminator_views(view):
    disc = PatchDiscriminator(in_channels=16, num_levels=2, base_channels=8, view=view)
    feats = [torch.randn(2, 16, 16, 16), torch.randn(2, 16, 8, 8)]
    images = torch.randn(2, 3, 64, 64) if view == 'conditional' else None
    assert [tuple(m.shape) for m in disc(feats, images)] == [(2, 1, 4, 4), (2, 1, 2, 2)]
    assert disc.nets[0][0].conv.in_channels == (8 if view == 'affinity' else 16 + 3)
    with pytest.raises(ValueError, match='images'):
        disc(feats, None if view == 'conditional' else torch.randn(2, 3, 64, 64))
    if view == 'conditional':  # the verdict depends on the image the maps come from
        assert not torch.equal(disc(feats, images)[0], disc(feats, torch.randn_like(images))[0])
    with pytest.raises(ValueError, match='view'):
        PatchDiscriminator(16, 1, view='pixels')
    with pytest.raises(ValueError, match='affinity_dilation=0'):
        PatchDiscriminator(16, 1, view='affinity', affinity_dilation=0)


def test_spectral_norm_bounds_every_convs_largest_singular_value():
    torch.manual_seed(0)
    disc = PatchDiscriminator(in_channels=8, num_levels=1, base_channels=8, spectral_norm=True,
                              init_cfg=None)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3
    for _ in range(20):  # power iterations, one per training forward
        disc([torch.randn(2, 8, 16, 16)])
    for conv in convs:
        sigma = float(torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2))
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_pca_initialisation_makes_the_round_trip_nearly_lossless():
    torch.manual_seed(0)
    # Teacher-like maps whose 32 channels live in an 8-dimensional subspace.
    basis = torch.randn(32, 8)
    feats = [torch.einsum('cd,ndhw->nchw', basis, torch.randn(2, 8, 6, 6)) + 3.0]
    t2s = T2SAdapters(teacher_channels=32, student_channels=8, num_levels=1, kernel_size=3)
    assert bool(t2s.needs_pca_init)
    before = (t2s(feats, round_trip=True)[0] - feats[0]).pow(2).mean()
    t2s.init_from_teacher(feats)
    after = (t2s(feats, round_trip=True)[0] - feats[0]).pow(2).mean()
    assert not t2s.needs_pca_init and after < 1e-6 < before
    assert T2SAdapters(16, 16, 1).needs_pca_init.item() is False
    with pytest.raises(ValueError, match='norm_cfg=None'):
        T2SAdapters(16, 8, 1, norm_cfg=dict(type='BN'))
