import math

import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes

from ktan_det.losses import AdversarialLoss, FeatureImitationLoss, SoftLabelLoss, foreground_masks


def test_imitation_is_mean_squared_error_averaged_over_levels():
    student = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 1, 1)]
    target = [torch.ones(1, 2, 2, 2), torch.full((1, 2, 1, 1), 3.0)]
    loss = FeatureImitationLoss(loss_weight=0.5)
    assert loss(student, target).item() == pytest.approx(0.5 * (1.0 + 9.0) / 2)
    weighted = FeatureImitationLoss(level_weights=[3.0, 1.0])
    assert weighted(student, target).item() == pytest.approx((3 * 1.0 + 9.0) / 4)


def test_imitation_foreground_weighting():
    student = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[2.0, 1.0]]]])  # squared errors: 4 in the box, 1 outside
    mask = [torch.tensor([[[True, False]]])]
    loss = FeatureImitationLoss(fg_weight=3.0)
    assert loss([student], [target], mask).item() == pytest.approx((3 * 4 + 1 * 1) / 4)


def test_imitation_normalisation_ignores_scale_and_offset():
    torch.manual_seed(0)
    target = torch.randn(2, 4, 5, 5)
    for mode in ('channel', 'level'):
        loss = FeatureImitationLoss(normalize=mode)
        assert loss([target * 7 + 3], [target]).item() == pytest.approx(0.0, abs=1e-6)
    assert FeatureImitationLoss()([target * 7 + 3], [target]).item() > 1


def test_imitation_rejects_bad_options_and_shapes():
    with pytest.raises(ValueError, match='normalize'):
        FeatureImitationLoss(normalize='batch')
    with pytest.raises(ValueError, match='level 0'):
        FeatureImitationLoss()([torch.zeros(1, 2, 3, 3)], [torch.zeros(1, 2, 4, 4)])


def test_foreground_masks_cover_the_cells_a_box_overlaps():
    boxes = [torch.tensor([[4.0, 0.0, 12.0, 5.0]]), torch.zeros((0, 4))]
    masks = foreground_masks(boxes, [torch.Size([2, 1, 4, 4]), torch.Size([2, 1, 2, 2])],
                             (16, 16))
    # stride 4: columns 1..2 (x 4..12), rows 0..1 (y 0..5); stride 8: column 0..1, row 0
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0:2, 1:3] = True
    assert torch.equal(masks[0][0], expected)
    assert torch.equal(masks[1][0], torch.tensor([[True, True], [False, False]]))
    assert not masks[0][1].any()
    # MMDetection's pipelines load boxes as HorizontalBoxes: the same masks.
    from_structures = foreground_masks([HorizontalBoxes(b) for b in boxes],
                                       [torch.Size([2, 1, 4, 4])], (16, 16))
    assert torch.equal(from_structures[0], masks[0])


@pytest.mark.parametrize('gan_type,disc,gen', [
    # real logit 2, fake logit -1
    ('vanilla', 0.5 * (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1))),
     math.log1p(math.exp(1))),
    ('lsgan', 0.5 * ((2 - 1)**2 + (-1)**2), (-1 - 1)**2),
    ('hinge', 0.5 * (0.0 + 0.0), 1.0),
])
def test_gan_loss_forms(gan_type, disc, gen):
    loss = AdversarialLoss(gan_type=gan_type, loss_weight=2.0)
    real, fake = [torch.full((1, 1, 2, 2), 2.0)], [torch.full((1, 1, 2, 2), -1.0)]
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(disc)
    assert loss.generator_loss(fake).item() == pytest.approx(2.0 * gen)
    assert loss.accuracy(real, fake).item() == 1.0
    assert loss.accuracy(fake, real).item() == 0.0
    probability = loss.real_probability(torch.tensor([-5.0, 5.0]))
    assert probability.tolist() == pytest.approx([0.0, 1.0], abs=1e-2)


def test_gan_losses_weight_object_patches_by_fg_weight():
    loss = AdversarialLoss(gan_type='lsgan', loss_weight=1.0, fg_weight=3.0)
    # Two patches: one inside a box (fake logit 0, real 1: both right) and one outside
    # (fake logit 1, real 0: both wrong, loss 1 each).
    real, fake = [torch.tensor([[[[1.0, 0.0]]]])], [torch.tensor([[[[0.0, 1.0]]]])]
    weights = loss.patch_weights([torch.tensor([[[True, False]]])])
    assert weights[0].tolist() == [[[[3.0, 1.0]]]]
    assert loss.discriminator_loss(real, fake, weights).item() == pytest.approx(
        0.5 * (1 / 4 + 1 / 4))
    assert loss.generator_loss(fake, weights).item() == pytest.approx((3 * 1 + 0) / 4)
    assert loss.generator_loss(fake).item() == pytest.approx(0.5)  # unweighted: the mean
    assert AdversarialLoss(fg_weight=1.0).patch_weights([torch.ones(1, 1, 2)]) is None
    with pytest.raises(ValueError, match='fg_weight'):
        AdversarialLoss(fg_weight=0)


def test_soft_label_softmax_kl_known_value():
    t = 2.0
    teacher = torch.tensor([[2.0, 0.0]])
    student = torch.tensor([[0.0, 0.0]])
    p = torch.softmax(teacher / t, -1)
    expected = t * t * (p * (p.log() - math.log(0.5))).sum().item()
    loss = SoftLabelLoss(temperature=t)
    assert loss(student, teacher).item() == pytest.approx(expected)
    assert loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_soft_label_sigmoid_binary_kl_known_value():
    teacher, student = torch.tensor([[0.0, 20.0]]), torch.tensor([[0.0, 0.0]])
    loss = SoftLabelLoss(temperature=1.0, score_type='sigmoid')
    # class 0: identical; class 1: KL(1 || 0.5) = log 2
    assert loss(student, teacher).item() == pytest.approx(math.log(2), rel=1e-4)


def test_soft_labels_of_no_samples_are_zero():
    student = torch.zeros(0, 9, requires_grad=True)
    loss = SoftLabelLoss()(student, torch.zeros(0, 9))
    assert loss.item() == 0.0
    loss.backward()
    assert student.grad.shape == (0, 9)


def test_soft_label_gradient_reaches_only_the_student():
    student = torch.zeros(3, 4, requires_grad=True)
    teacher = torch.randn(3, 4, requires_grad=True)
    SoftLabelLoss()(student, teacher).backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None
