import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper

from ktan_det.models import DistillationSetupError, TeacherCheckpointError

from conftest import KTAN_CFG, tiny_batch, tiny_run_config


@pytest.fixture
def ktan_cfg(tiny_data, tiny_teacher_ckpt, tmp_path):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, str(tmp_path))
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    cfg.model.train_cfg = dict(tgn_iters=2, adv_start_iter=1, disc_steps=1)
    return cfg


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def _at_iter(iteration):
    MessageHub.get_current_instance().update_info('iter', iteration)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_teacher_is_frozen_loaded_and_kept_out_of_checkpoints(ktan_cfg, tiny_teacher_ckpt):
    model, _ = _build(ktan_cfg)
    saved = torch.load(tiny_teacher_ckpt)['state_dict']
    # init_weights() ran after loading: the teacher still holds the checkpoint's weights.
    assert all(torch.equal(v, saved[k]) for k, v in model.teacher.state_dict().items())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.train()
    assert model.student.training and not model.teacher.training
    state = model.state_dict()
    assert state and not any(k.startswith('teacher.') for k in state)
    assert {k.split('.')[0] for k in state} == {'student', 't2s', 'discriminator', 'schedule',
                                                'num_skipped_steps'}
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key in ('num_skipped_steps', 'schedule.balance'):  # as in older checkpoints
        state.pop(key)
    assert not model.load_state_dict(state, strict=True).missing_keys


def test_optimizers_hold_student_t2s_and_discriminator_never_the_teacher(ktan_cfg):
    model, optim = _build(ktan_cfg)

    def params(wrapper):
        return {id(p) for group in wrapper.optimizer.param_groups for p in group['params']}

    teacher = {id(p) for p in model.teacher.parameters()}
    assert params(optim['student']) == {id(p) for p in model.student.parameters()} | {
        id(p) for p in model.t2s.parameters()}
    assert params(optim['discriminator']) == {id(p) for p in model.discriminator.parameters()}
    assert not teacher & (params(optim['student']) | params(optim['discriminator']))


def test_tgn_stage_trains_t2s_then_freezes_it(ktan_cfg):
    model, optim = _build(ktan_cfg)
    model.train()
    batch = tiny_batch(ktan_cfg)
    student_before, t2s_before = _snapshot(model.student), _snapshot(model.t2s)
    _at_iter(0)
    logs = model.train_step(batch, optim)
    assert any(k.startswith('tgn_loss') for k in logs) and 'loss_imitation' not in logs
    assert not _same(t2s_before, _snapshot(model.t2s))
    assert not _same(student_before, _snapshot(model.student))
    assert all(p.grad is None for p in model.teacher.parameters())
    _at_iter(2)  # the TGN stage is over
    model.train_step(batch, optim)
    assert not model.t2s.trainable
    frozen = _snapshot(model.t2s)
    _at_iter(3)
    logs = model.train_step(batch, optim)
    assert _same(frozen, _snapshot(model.t2s))
    assert {'loss_imitation', 'loss_adv', 'loss_soft', 'disc_loss', 'disc_acc'} <= set(logs)
    assert not any(k.startswith('tgn_') for k in logs)


@pytest.mark.parametrize('adv_design', [
    {}, dict(view='affinity', spectral_norm=True), dict(view='conditional', fg_weight=3.0)])
def test_updates_do_not_leak_between_student_and_discriminator(ktan_cfg, adv_design):
    adv_design = dict(adv_design)
    ktan_cfg.model.loss_adv.fg_weight = adv_design.pop('fg_weight', 1.0)
    ktan_cfg.model.discriminator.update(adv_design)
    model, optim = _build(ktan_cfg)
    model.train()
    batch = tiny_batch(ktan_cfg)
    disc_wrapper, student_wrapper = optim['discriminator'], optim['student']
    seen = {}
    disc_backward, disc_step = disc_wrapper.backward, disc_wrapper.step

    def checked_backward(loss, **kwargs):
        seen['disc_grads_clean'] = all(p.grad is None or not p.grad.any()
                                       for p in model.discriminator.parameters())
        seen['student_grads_before'] = [p.grad for p in model.student.parameters()]
        disc_backward(loss, **kwargs)
        seen['student_grads_after'] = [p.grad for p in model.student.parameters()]

    def checked_step(**kwargs):
        seen['student_at_disc_step'] = _snapshot(model.student)
        disc_step(**kwargs)
        seen['disc_after_its_step'] = _snapshot(model.discriminator)

    disc_wrapper.backward, disc_wrapper.step = checked_backward, checked_step
    for iteration in (3, 4):  # past the TGN stage and adv_start_iter
        _at_iter(iteration)
        student_before = _snapshot(model.student)
        disc_before = _snapshot(model.discriminator)
        model.train_step(batch, optim)
        # The discriminator's gradients are clean when its own step begins, also after a
        # student step whose adversarial term ran through it.
        assert seen['disc_grads_clean']
        # Its loss gives the student no gradient, and its step leaves the student unchanged.
        assert all(a is None and b is None for a, b in zip(seen['student_grads_before'],
                                                            seen['student_grads_after']))
        assert _same(student_before, seen['student_at_disc_step'])
        # The student's update leaves the discriminator as its own step left it.
        assert _same(seen['disc_after_its_step'], _snapshot(model.discriminator))
        assert not _same(disc_before, _snapshot(model.discriminator))
        assert not _same(student_before, _snapshot(model.student))
        assert all(p.grad is None for p in model.teacher.parameters())
        assert all(p.grad is None or not p.grad.any() for p in model.discriminator.parameters())
    assert student_wrapper is optim['student']


def test_adversarial_training_starts_at_its_iteration(ktan_cfg):
    ktan_cfg.model.train_cfg.adv_start_iter = 5
    model, optim = _build(ktan_cfg)
    model.train()
    batch = tiny_batch(ktan_cfg)
    _at_iter(3)
    logs = model.train_step(batch, optim)
    assert 'loss_imitation' in logs and 'loss_adv' not in logs and 'disc_loss' not in logs
    _at_iter(7)
    assert 'loss_adv' in model.train_step(batch, optim)


def _phases_1_and_2(model, batch):
    """The student's losses and record, and the teacher's targets, at the steady stage."""
    data = model.data_preprocessor(batch, True)
    inputs, data_samples = data['inputs'], data['data_samples']
    losses, record = model.student_forward(inputs, data_samples)
    stage = model.schedule.steady_stage()
    return inputs, data_samples, stage, record, model.teacher_targets(stage, inputs, data_samples,
                                                                      record)


def test_soft_labels_compare_the_rois_the_student_sampled(ktan_cfg):
    model, _ = _build(ktan_cfg)
    model.train()
    inputs, _, _, record, targets = _phases_1_and_2(model, tiny_batch(ktan_cfg))
    rois, scores = record.rois, record.cls_scores
    sampler_num = ktan_cfg.model.student.train_cfg.rcnn.sampler.num
    assert rois.shape[1] == 5 and rois.shape[0] == scores.shape[0] <= 2 * sampler_num
    assert targets.samples is None and targets.cls_scores.shape == scores.shape == (
        rois.shape[0], 9)
    feats = list(model.teacher.extract_feat(inputs))
    torch.testing.assert_close(targets.cls_scores,
                               model.teacher.roi_head._bbox_forward(feats, rois)['cls_score'])


def test_soft_labels_on_a_random_subset_of_the_rois(ktan_cfg):
    ktan_cfg.model.train_cfg.soft_rois_per_img = 5
    model, _ = _build(ktan_cfg)
    model.train()
    torch.manual_seed(1)
    inputs, data_samples, stage, record, targets = _phases_1_and_2(model, tiny_batch(ktan_cfg))
    torch.manual_seed(1)
    model.student_forward(inputs, data_samples)  # the same random draws up to the subset
    keep = torch.randperm(record.rois.shape[0])[:5 * 2]
    assert torch.equal(targets.samples, keep)
    feats = list(model.teacher.extract_feat(inputs))
    torch.testing.assert_close(targets.cls_scores, model.teacher.roi_head._bbox_forward(
        feats, record.rois[keep])['cls_score'])
    loss_soft = model.ktan_losses(stage, inputs, data_samples, targets, record)['loss_soft']
    assert loss_soft.requires_grad  # still attached to the student's graph
    torch.testing.assert_close(loss_soft, model.loss_soft(record.cls_scores[keep],
                                                          targets.cls_scores))


def test_soft_labels_at_the_teachers_best_proposals(ktan_cfg):
    ktan_cfg.model.train_cfg.update(soft_rois='teacher', soft_rois_per_img=4)
    model, _ = _build(ktan_cfg)
    model.train()
    inputs, data_samples, stage, record, targets = _phases_1_and_2(model, tiny_batch(ktan_cfg))
    feats = list(model.teacher.extract_feat(inputs))
    proposals = model.teacher.rpn_head.predict(feats, data_samples, rescale=False)
    assert targets.samples is None and targets.rois.shape == (8, 5)  # 4 per image
    for i, image_proposals in enumerate(proposals):  # each image's 4 best, best first
        torch.testing.assert_close(targets.rois[targets.rois[:, 0] == i, 1:],
                                   image_proposals.bboxes[:4])
        assert image_proposals.scores[:4].tolist() == sorted(image_proposals.scores[:4].tolist(),
                                                             reverse=True)
    torch.testing.assert_close(targets.cls_scores, model.teacher.roi_head._bbox_forward(
        feats, targets.rois)['cls_score'])
    loss_soft = model.ktan_losses(stage, inputs, data_samples, targets, record)['loss_soft']
    student_scores = model.student.roi_head._bbox_forward(record.neck_feats,
                                                          targets.rois)['cls_score']
    torch.testing.assert_close(loss_soft, model.loss_soft(student_scores, targets.cls_scores))
    grads = torch.autograd.grad(loss_soft, list(model.student.roi_head.parameters()),
                                allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_soft_objectness_compares_the_rpns_at_every_anchor(ktan_cfg):
    ktan_cfg.model.train_cfg.soft_objectness = 0.5
    model, _ = _build(ktan_cfg)
    model.train()
    inputs, data_samples, stage, record, targets = _phases_1_and_2(model, tiny_batch(ktan_cfg))
    feats = list(model.teacher.extract_feat(inputs))
    teacher_maps = model.teacher.rpn_head(feats)[0]
    assert [m.shape for m in record.objectness] == [m.shape for m in teacher_maps]
    anchors = sum(m.numel() for m in teacher_maps)
    assert targets.objectness.shape == (anchors, 1)
    # Image 0, level 0, first position: its anchors are the first rows, in anchor order.
    num_anchors = teacher_maps[0].shape[1]
    torch.testing.assert_close(targets.objectness[:num_anchors, 0], teacher_maps[0][0, :, 0, 0])
    loss_soft = model.ktan_losses(stage, inputs, data_samples, targets, record)['loss_soft']
    rois_term = model.loss_soft(record.cls_scores, targets.cls_scores)
    objectness_term = model.loss_soft(
        torch.cat([m.permute(0, 2, 3, 1).reshape(-1, 1) for m in record.objectness]),
        targets.objectness, 'sigmoid')
    torch.testing.assert_close(loss_soft, rois_term + 0.5 * objectness_term)
    assert objectness_term > 0
    rpn = model.student.rpn_head
    grads = torch.autograd.grad(objectness_term, [*rpn.rpn_conv.parameters(),
                                                  *rpn.rpn_cls.parameters()])
    assert all(g.abs().sum() > 0 for g in grads)


def test_recording_and_the_tgn_round_trip_hook_nothing_outside_their_step(ktan_cfg):
    model, optim = _build(ktan_cfg)
    model.train()
    batch = tiny_batch(ktan_cfg)
    for iteration in (0, 3):  # the TGN stage (round trip through T2S), then distillation
        _at_iter(iteration)
        model.train_step(batch, optim)
        assert not any(m._forward_hooks for m in model.modules())


def test_the_teacher_follows_the_distillers_dtype_and_device(ktan_cfg):
    model, _ = _build(ktan_cfg)
    for move, dtype in ((lambda: model.to(torch.float64), torch.float64),
                        (model.half, torch.float16), (model.float, torch.float32),
                        (lambda: model.to('cpu'), torch.float32), (model.cpu, torch.float32)):
        move()
        assert {(p.dtype, p.device.type) for p in model.teacher.parameters()} == {
            (dtype, 'cpu')}
    model.train()
    assert not model.teacher.training and not any(
        p.requires_grad for p in model.teacher.parameters())


def test_student_inference_and_predict_mode(ktan_cfg):
    model, _ = _build(ktan_cfg)
    model.eval()
    data = model.data_preprocessor(tiny_batch(ktan_cfg), False)
    with torch.no_grad():
        results = model(data['inputs'], data['data_samples'], mode='predict')
    assert len(results) == 2 and 'bboxes' in results[0].pred_instances
    with pytest.raises(RuntimeError, match='MMSeparateDistributedDataParallel'):
        model(data['inputs'], data['data_samples'], mode='loss')


def test_missing_unreadable_or_mismatched_teacher_checkpoint(ktan_cfg, tmp_path,
                                                             tiny_teacher_ckpt):
    cfg = copy.deepcopy(ktan_cfg)
    cfg.model.teacher_ckpt = str(tmp_path / 'nope.pth')
    with pytest.raises(TeacherCheckpointError, match='nope.pth does not exist'):
        MODELS.build(cfg.model)
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'not a checkpoint')
    cfg.model.teacher_ckpt = str(broken)
    with pytest.raises(TeacherCheckpointError, match='broken.pth could not be read'):
        MODELS.build(cfg.model)
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    cfg.model.teacher.neck.out_channels = 48
    with pytest.raises(TeacherCheckpointError, match='does not match the teacher config.*'
                       'shape mismatches.*neck'):
        MODELS.build(cfg.model)


def test_no_teacher_checkpoint_builds_but_refuses_to_train(ktan_cfg):
    ktan_cfg.model.teacher_ckpt = None
    model, optim = _build(ktan_cfg)
    _at_iter(3)
    with pytest.raises(DistillationSetupError, match='teacher_ckpt=None'):
        model.train_step(tiny_batch(ktan_cfg), optim)


@pytest.mark.parametrize('tgn', [0, dict(fraction=0.0), dict(epoch=0)])
def test_different_widths_need_a_tgn_stage_for_a_random_t2s(ktan_cfg, tgn):
    ktan_cfg.model.train_cfg = dict(tgn_iters=tgn)
    ktan_cfg.model.t2s = dict(kernel_size=1, init='random')
    with pytest.raises(DistillationSetupError, match='tgn_iters'):
        MODELS.build(ktan_cfg.model)


def test_pca_t2s_without_tgn_stage_stays_at_the_first_batch_pca_map(ktan_cfg):
    ktan_cfg.model.train_cfg = dict(tgn_iters=0, adv_start_iter=0)
    model, optim = _build(ktan_cfg)
    model.train()
    batch = tiny_batch(ktan_cfg)
    expected = copy.deepcopy(model.t2s)
    with torch.no_grad():
        feats = model.teacher.extract_feat(model.data_preprocessor(batch, True)['inputs'])
    expected.init_from_teacher([feats[i] for i in model.tap_levels])
    _at_iter(0)
    logs = model.train_step(batch, optim)
    assert {'loss_imitation', 'loss_adv', 'loss_soft'} <= set(logs)
    assert not any(k.startswith('tgn_') for k in logs)
    assert not model.t2s.trainable and not model.t2s.needs_pca_init
    assert _same(_snapshot(expected), _snapshot(model.t2s))
    _at_iter(1)
    model.train_step(tiny_batch(ktan_cfg, size=4), optim)
    assert _same(_snapshot(expected), _snapshot(model.t2s))


def test_partial_part_configs_override_the_defaults(ktan_cfg):
    ktan_cfg.model.loss_adv = dict(gan_type='hinge', loss_weight=0.3)
    ktan_cfg.model.loss_soft = dict(temperature=4.0)
    model = MODELS.build(ktan_cfg.model)
    assert (model.loss_adv.gan_type, model.loss_adv.loss_weight) == ('hinge', 0.3)
    assert model.loss_soft.temperature == 4.0 and model.loss_soft.score_type == 'softmax'


def test_after_the_stop_the_teacher_does_not_run_and_stale_logs_are_dropped(ktan_cfg):
    model, optim = _build(ktan_cfg)
    model.train()
    model.schedule.configure(stop=5)
    hub = MessageHub.get_current_instance()
    # As after a resume: the restored hub holds values this stage no longer computes.
    for key in ('loss_adv', 'disc_acc', 'feat_dist_l0', 'tgn_loss_cls'):
        hub.update_scalar(f'train/{key}', 1.0)
    hub.update_scalar('train/scale_adv', 1.0)  # logged by the hook, not the distiller
    calls = []
    model.teacher.backbone.register_forward_pre_hook(lambda *args: calls.append('teacher'))
    _at_iter(4)  # still distilling: the teacher runs
    model.train_step(tiny_batch(ktan_cfg), optim)
    assert calls
    for key in ('loss_adv', 'disc_acc', 'feat_dist_l0', 'tgn_loss_cls'):
        hub.update_scalar(f'train/{key}', 1.0)
    calls.clear()
    _at_iter(5)
    logs = model.train_step(tiny_batch(ktan_cfg), optim)
    assert not calls and 'loss_cls' in logs and 'loss_imitation' not in logs
    assert not any(f'train/{k}' in hub.log_scalars
                   for k in ('loss_adv', 'disc_acc', 'feat_dist_l0', 'tgn_loss_cls'))
    assert 'train/scale_adv' in hub.log_scalars


def _accumulation_cfg(ktan_cfg, counts, adversarial=False, lr=0.02):
    """Every anchor and proposal taken (no random samples), no flips, plain SGD: then k
    micro-batches accumulate to one step on the k-times batch, up to each loss's own
    normalisation over its samples."""
    cfg = copy.deepcopy(ktan_cfg)
    cfg.model.train_cfg = dict(tgn_iters=0, adv_start_iter=0, disc_steps=2)
    cfg.model.tap_levels = [0, 1, 2, 3]  # P6 is too small for a unique PCA (see DDP test)
    if not adversarial:
        cfg.model.loss_adv = cfg.model.discriminator = None
        cfg.optim_wrapper.pop('discriminator')
    for detector in (cfg.model.student, cfg.model.teacher):
        detector.train_cfg.rpn.sampler.num = 100000
        detector.train_cfg.rcnn.sampler.num = 100000
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'RandomFlip':
            transform['prob'] = 0.0
    cfg.optim_wrapper.student.optimizer = dict(type='SGD', lr=lr, weight_decay=0.0)
    cfg.optim_wrapper.student.pop('clip_grad', None)  # a step linear in the gradients
    cfg.optim_wrapper.student.accumulative_counts = counts
    return cfg


def test_accumulated_micro_batches_update_like_one_step_on_their_union(ktan_cfg):
    batch = tiny_batch(ktan_cfg, size=4)
    halves = [{k: v[i:i + 2] for k, v in batch.items()} for i in (0, 2)]
    models = []
    for counts, batches in ((1, [batch]), (2, halves)):
        model, optim = _build(_accumulation_cfg(ktan_cfg, counts))
        model.train()
        with torch.no_grad():  # the same T2S for both: the PCA map of the whole batch
            feats = model.teacher.extract_feat(model.data_preprocessor(batch, True)['inputs'])
        model.t2s.init_from_teacher([feats[i] for i in model.tap_levels])
        initial = _snapshot(model.student)
        for batch_part in batches:
            _at_iter(0)
            model.train_step(batch_part, optim)
        models.append(model)
    one, accumulated = (_snapshot(m.student) for m in models)
    keys = [k for k in one if one[k].is_floating_point()]
    update = torch.cat([(one[k] - initial[k]).flatten() for k in keys])
    gap = torch.cat([(accumulated[k] - one[k]).flatten() for k in keys])
    assert update.norm() > 0 and gap.norm() < 0.05 * update.norm(), (gap.norm(), update.norm())


def test_a_non_finite_micro_batch_drops_only_its_own_contribution(ktan_cfg):
    batch = tiny_batch(ktan_cfg, size=4)
    halves = [{k: v[i:i + 2] for k, v in batch.items()} for i in (0, 2)]
    model, optim = _build(_accumulation_cfg(ktan_cfg, 2))
    model.train()
    initial = _snapshot(model.student)
    healthy, calls = model.loss_imitation.forward, []

    def nan_on_the_second_call(*args):
        calls.append(None)
        return healthy(*args) * (float('nan') if len(calls) == 2 else 1.0)

    model.loss_imitation.forward = nan_on_the_second_call
    _at_iter(0)
    model.train_step(halves[0], optim)
    assert _same(initial, _snapshot(model.student))  # mid-window: no step yet
    _at_iter(1)
    model.train_step(halves[1], optim)
    assert int(model.num_skipped_steps) == 1
    # The window's step came, from the first micro-batch alone, scaled by 1/2 as MMEngine
    # scales each micro-batch: the same as one step on it at half the learning rate.
    reference, reference_optim = _build(_accumulation_cfg(ktan_cfg, 1, lr=0.01))
    reference.train()
    _at_iter(0)
    reference.train_step(halves[0], reference_optim)
    got, expected = _snapshot(model.student), _snapshot(reference.student)
    assert not _same(initial, got)
    for key in got:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-6)


def test_the_discriminator_takes_disc_steps_updates_per_student_update(ktan_cfg):
    model, optim = _build(_accumulation_cfg(ktan_cfg, 2, adversarial=True))
    model.train()
    batch = tiny_batch(ktan_cfg)
    for iteration in range(4):  # 2 windows of 2 micro-batches
        _at_iter(iteration)
        logs = model.train_step(batch, optim)
        assert ('disc_loss' in logs) == (iteration % 2 == 1)
    steps = {int(s['step']) for s in optim['discriminator'].optimizer.state.values()}
    assert steps == {2 * 2}  # disc_steps=2 at each of the 2 student updates
