import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

from ktan_det.engine import KTANOptimWrapperConstructor

from conftest import KTAN_CFG


def _constructor(optim_wrapper):
    cfg = {k: v for k, v in optim_wrapper.items() if k != 'constructor'}
    return KTANOptimWrapperConstructor(cfg)


def test_amp_flag_makes_both_wrappers_amp():
    cfg = Config.fromfile(KTAN_CFG)
    # What `tools/train.py --amp` (ours and MMDetection's) does to the config.
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    wrappers = _constructor(cfg.optim_wrapper).wrapper_cfgs
    for key in ('student', 'discriminator'):
        assert wrappers[key]['type'] == 'AmpOptimWrapper'
        assert wrappers[key]['loss_scale'] == 'dynamic'
    assert wrappers['student']['optimizer'] == cfg.optim_wrapper.student.optimizer
    assert wrappers['discriminator']['optimizer']['type'] == 'Adam'


def test_a_wrapper_keeps_its_own_settings():
    with pytest.warns(UserWarning, match='discriminator names'):
        wrappers = KTANOptimWrapperConstructor(dict(
            type='AmpOptimWrapper', clip_grad=dict(max_norm=1),
            student=dict(optimizer=dict(type='SGD', lr=0.1)),
            discriminator=dict(type='OptimWrapper', clip_grad=None,
                               optimizer=dict(type='Adam', lr=1e-4)))).wrapper_cfgs
    assert wrappers['student']['clip_grad'] == dict(max_norm=1)
    assert wrappers['discriminator']['type'] == 'OptimWrapper'
    assert wrappers['discriminator']['clip_grad'] is None


def test_amp_flag_leaves_a_wrapper_that_names_its_own_type_buildable():
    # student=_base_.optim_wrapper brings MMDetection's type='OptimWrapper' along; --amp adds
    # loss_scale, which OptimWrapper does not take.
    with pytest.warns(UserWarning, match="student names type='OptimWrapper'.*runs in float32"):
        wrappers = KTANOptimWrapperConstructor(dict(
            type='AmpOptimWrapper', loss_scale='dynamic',
            student=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
            discriminator=dict(optimizer=dict(type='Adam', lr=1e-4)))).wrapper_cfgs
    assert 'loss_scale' not in wrappers['student']
    assert wrappers['discriminator']['loss_scale'] == 'dynamic'
    student = DefaultOptimWrapperConstructor(wrappers['student'])(nn.Linear(2, 2))
    assert type(student) is OptimWrapper


@pytest.mark.parametrize('cfg,match', [
    (dict(discriminator=dict(optimizer=dict(type='Adam'))), "needs a 'student' entry"),
    (dict(student=dict(lr=0.1)), 'optim_wrapper.student needs an optimizer'),
    (dict(student=dict(optimizer=dict(type='SGD')), generator=dict()), "unknown.*generator"),
])
def test_bad_optim_wrapper_configs(cfg, match):
    with pytest.raises(ValueError, match=match):
        KTANOptimWrapperConstructor(cfg)


def test_auto_scale_lr_scales_student_and_discriminator_alike():
    # `--auto-scale-lr`: MMEngine's Runner.scale_lr multiplies every wrapper of the dict by the
    # batch ratio, so the two keep the ratio of their learning rates (their relative pace).
    from types import SimpleNamespace

    from mmengine.runner import Runner
    class Parts(nn.Module):  # what the constructor reads of a distiller
        def __init__(self):
            super().__init__()
            self.student, self.t2s, self.discriminator = (nn.Linear(2, 2) for _ in range(3))

    optim = _constructor(Config.fromfile(KTAN_CFG).optim_wrapper)(Parts())
    before = {k: [g['lr'] for g in w.optimizer.param_groups] for k, w in optim.items()}
    runner = SimpleNamespace(_train_dataloader=dict(batch_size=4), world_size=2,
                             logger=SimpleNamespace(info=lambda message: None),
                             param_schedulers=None)
    Runner.scale_lr(runner, optim, dict(enable=True, base_batch_size=4))
    after = {k: [g['lr'] for g in w.optimizer.param_groups] for k, w in optim.items()}
    assert set(after) == {'student', 'discriminator'}
    assert all(a == pytest.approx(2 * b) for k in after for a, b in zip(after[k], before[k]))
