"""Mixed precision, run for real on the CPU: KTAN steps under float16 autocast.

MMEngine's AmpOptimWrapper needs a GPU, so these tests use a wrapper whose ``optim_context``
is CPU autocast; float16, because mmcv's CPU RoIAlign has no bfloat16 kernel. The distiller
enters each wrapper's context exactly as it enters AmpOptimWrapper's. mmcv's CPU NMS takes
float32 only (its CUDA kernel takes half too), which fails the plain student's RPN with or
without KTAN: the tests give it float32 boxes, as the GPU kernel's own conversion would.
"""
import importlib
from contextlib import contextmanager

import pytest
import torch
from mmdet.registry import MODELS, OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper, build_optim_wrapper
from test_distiller import _at_iter, _snapshot

from conftest import KTAN_CFG, tiny_batch, tiny_run_config

KTAN_LOSSES = ('loss_imitation', 'loss_adv', 'loss_soft')


@OPTIM_WRAPPERS.register_module(force=True)
class CPUAutocastOptimWrapper(OptimWrapper):
    """An optimizer wrapper whose forward passes run under CPU float16 autocast."""

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.float16):
            yield


@pytest.fixture
def cpu_nms_takes_half(monkeypatch):
    ext = importlib.import_module('mmcv.ops.nms').ext_module  # mmcv.ops.nms is the function
    nms = ext.nms
    monkeypatch.setattr(ext, 'nms', lambda boxes, scores, *args, **kwargs: nms(
        boxes.float(), scores.float(), *args, **kwargs))


def _amp_distiller(tiny_data, tiny_teacher_ckpt, work_dir, t2s_init, student_wrapper,
                   disc_wrapper):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, work_dir)
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    # A random T2S learnt in a one-step TGN stage, or a PCA one fixed from the first step;
    # the adversarial term one step after distillation starts.
    tgn_iters = 1 if t2s_init == 'random' else 0
    cfg.model.train_cfg = dict(tgn_iters=tgn_iters, adv_start_iter=1, disc_steps=1)
    cfg.model.t2s = dict(kernel_size=1, norm_cfg=None, init=t2s_init)
    cfg.optim_wrapper.student.type = student_wrapper
    cfg.optim_wrapper.discriminator.type = disc_wrapper
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, build_optim_wrapper(model, cfg.optim_wrapper), tiny_batch(cfg)


@pytest.mark.parametrize('t2s_init,disc_wrapper', [('random', 'CPUAutocastOptimWrapper'),
                                                   ('pca', 'OptimWrapper')])
def test_ktan_steps_under_float16_autocast(tiny_data, tiny_teacher_ckpt, tmp_path, t2s_init,
                                           disc_wrapper, cpu_nms_takes_half):
    """Every stage under autocast (TGN, PCA initialisation, imitation, soft labels, the
    adversarial term), with an autocast discriminator or a float32 one (its half-precision
    inputs cast): finite float32 KTAN losses, the student and the discriminator updated, the
    student's neck maps really in half precision."""
    model, optim, batch = _amp_distiller(tiny_data, tiny_teacher_ckpt, str(tmp_path), t2s_init,
                                         'CPUAutocastOptimWrapper', disc_wrapper)
    model.train()
    neck_dtypes = []
    model.student.neck.register_forward_hook(
        lambda module, args, out: neck_dtypes.append(out[0].dtype))
    student_before = _snapshot(model.student)
    disc_before = _snapshot(model.discriminator)
    for iteration in range(4):  # TGN, distillation, then adversarial too
        _at_iter(iteration)
        logs = model.train_step(batch, optim)
        for name, value in logs.items():
            assert torch.isfinite(value).all(), (iteration, name, value)
    assert set(KTAN_LOSSES) <= set(logs) and 'disc_loss' in logs
    for name in (*KTAN_LOSSES, 'disc_loss'):
        assert logs[name].dtype == torch.float32, (name, logs[name].dtype)
    assert torch.float16 in neck_dtypes
    assert int(model.num_skipped_steps) == 0
    changed = [k for k, v in _snapshot(model.student).items()
               if v.is_floating_point() and not torch.equal(v, student_before[k])]
    assert any(k.startswith('backbone.') for k in changed)
    assert not all(torch.equal(v, disc_before[k])
                   for k, v in _snapshot(model.discriminator).items())
    for param in model.student.parameters():
        assert param.dtype == torch.float32  # autocast computes in half, keeps weights float32


@pytest.mark.parametrize('design', [
    dict(view='conditional', fg_weight=3.0, soft_rois='teacher', soft_objectness=1.0),
    dict(view='affinity', spectral_norm=True)])
def test_design_options_step_under_float16_autocast(tiny_data, tiny_teacher_ckpt, tmp_path,
                                                    design, cpu_nms_takes_half):
    """The discriminator views, object-weighted patches, spectral norm, the teacher's RoIs and
    the RPN objectness, each under autocast: finite float32 losses, nothing skipped."""
    cfg = tiny_run_config(KTAN_CFG, tiny_data, str(tmp_path))
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    cfg.model.train_cfg = dict(tgn_iters=0, adv_start_iter=1, disc_steps=1,
                               soft_rois=design.pop('soft_rois', 'student'),
                               soft_objectness=design.pop('soft_objectness', 0.0))
    cfg.model.loss_adv.fg_weight = design.pop('fg_weight', 1.0)
    cfg.model.discriminator.update(design)
    cfg.optim_wrapper.student.type = 'CPUAutocastOptimWrapper'
    cfg.optim_wrapper.discriminator.type = 'CPUAutocastOptimWrapper'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim, batch = build_optim_wrapper(model, cfg.optim_wrapper), tiny_batch(cfg)
    model.train()
    for iteration in range(3):
        _at_iter(iteration)
        logs = model.train_step(batch, optim)
    for name in (*KTAN_LOSSES, 'disc_loss'):
        assert torch.isfinite(logs[name]) and logs[name].dtype == torch.float32, name
    assert int(model.num_skipped_steps) == 0


def test_ktan_losses_take_half_precision_inputs_in_float32():
    """The losses' own arithmetic is float32 whatever their inputs: standardisation
    (std_mean), the sigmoid soft labels and the GAN terms."""
    from ktan_det.losses import AdversarialLoss, FeatureImitationLoss, SoftLabelLoss
    torch.manual_seed(0)
    student, target = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    logits_s, logits_t = torch.randn(6, 4), torch.randn(6, 4)
    for loss, args in (
            (FeatureImitationLoss(normalize='channel'), ([student], [target])),
            (SoftLabelLoss(score_type='sigmoid'), (logits_s, logits_t)),
            (SoftLabelLoss(score_type='softmax'), (logits_s, logits_t))):
        exact = loss(*args)
        half = loss(*[[a.half() for a in x] if isinstance(x, list) else x.half()
                      for x in args])
        assert half.dtype == torch.float32
        torch.testing.assert_close(half, exact, rtol=2e-3, atol=1e-3)
    adv = AdversarialLoss()
    assert adv.generator_loss([logits_s.half()]).dtype == torch.float32
    assert adv.discriminator_loss([logits_t.half()], [logits_s.half()]).dtype == torch.float32
