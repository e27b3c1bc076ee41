from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.hooks import CheckpointHook
from mmengine.config import Config
from mmengine.logging import MessageHub

from ktan_det.hooks import (DistillationMonitorHook, KTANLossWeightHook, StudentExportHook,
                            TeacherGuardHook)
from ktan_det.models import TeacherCheckpointError
from ktan_det.utils.export import KTAN_HOOKS

from conftest import KTAN_CFG, tiny_run_config, tiny_teacher_model


@pytest.fixture
def model(tiny_data, tiny_teacher_ckpt, tmp_path):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, str(tmp_path))
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


class _Logger:
    def __init__(self):
        self.warnings = []

    def warning(self, message):
        self.warnings.append(message)

    def info(self, message):
        pass


def _runner(model, iteration=0, classes=None, resume=False):
    dataset = SimpleNamespace(metainfo=dict(classes=classes)) if classes else None
    return SimpleNamespace(model=model, iter=iteration, epoch=0, logger=_Logger(), hooks=[],
                           message_hub=MessageHub.get_instance('hook-tests'),
                           train_dataloader=SimpleNamespace(dataset=dataset), _resume=resume)


def test_loss_weight_schedule_ramps_and_stops():
    hook = KTANLossWeightHook(warmup_iters=dict(adv=4, imitation=2), stop_iter=20)
    scales = [hook.scales(i, 0, tgn_iters=10, adv_start_iter=2) for i in range(8, 22)]
    assert [s['imitation'] for s in scales[:5]] == [0.0, 0.0, 0.5, 1.0, 1.0]  # iters 8..12
    assert [s['adv'] for s in scales[3:9]] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]  # iters 11..16
    assert scales[-3]['soft'] == 1.0 and scales[-2] == {'imitation': 0.0, 'adv': 0.0,
                                                        'soft': 0.0}
    assert KTANLossWeightHook(stop_epoch=2).scales(0, 2, 0, 0)['soft'] == 0.0
    with pytest.raises(ValueError, match='unknown losses'):
        KTANLossWeightHook(warmup_iters=dict(feature=3))


def test_loss_weight_schedule_sets_the_model_scales(model):
    KTANLossWeightHook(warmup_iters=dict(adv=10)).before_train_iter(
        _runner(model, iteration=model.tgn_iters + model.adv_start_iter + 4), 0)
    assert model.loss_scales == dict(imitation=1.0, adv=0.5, soft=1.0)
    KTANLossWeightHook(stop_iter=1).before_train_iter(_runner(model, iteration=1), 0)
    assert model.distilling_losses == []


def test_monitor_warns_once_per_collapse_streak():
    hook = DistillationMonitorHook(patience=3)
    runner = _runner(None)
    for accuracy in [1.0, 1.0, 1.0, 1.0, 0.7, 0.5, 0.4, 0.45]:
        hook.after_train_iter(runner, 0, outputs=dict(disc_acc=torch.tensor(accuracy)))
    assert len(runner.logger.warnings) == 2
    assert 'wins completely' in runner.logger.warnings[0]
    assert 'loses completely' in runner.logger.warnings[1]


def test_monitor_stops_before_a_checkpoint_with_nan_weights(model):
    hook = DistillationMonitorHook()
    runner = _runner(model, iteration=1)
    runner.hooks = [CheckpointHook(interval=2, by_epoch=False)]
    runner.max_iters = 10
    hook.after_train_iter(runner, 0, outputs={})  # iteration 2 ends: a checkpoint is due
    with torch.no_grad():
        model.student.backbone.conv1.weight[0, 0, 0, 0] = float('nan')
    runner.iter = 2
    hook.after_train_iter(runner, 0, outputs={})  # no checkpoint at iteration 3: no check
    runner.iter = 3
    with pytest.raises(RuntimeError, match='NaN or inf.*student.backbone.conv1.weight'):
        hook.after_train_iter(runner, 0, outputs={})


def test_teacher_guard_accepts_the_loaded_teacher_and_records_it(model):
    hook = TeacherGuardHook()
    runner = _runner(model, classes=('disk', 'ring', 'square', 'triangle', 'star', 'cross',
                                     'striped_square', 'checkered_disk'))
    hook.before_run(runner)
    hook.before_train(runner)
    checkpoint = dict(meta={})
    hook.before_save_checkpoint(runner, checkpoint)
    record = checkpoint['meta']['ktan_teacher']
    assert record['path'] == model.teacher_ckpt and len(record['sha256']) == 64
    recorded = Config.fromstring(record['config'], '.py').model
    assert recorded.backbone == tiny_teacher_model()['backbone']


def test_teacher_guard_names_reinitialised_weights(model):
    hook = TeacherGuardHook()
    runner = _runner(model)
    hook.before_run(runner)
    with torch.no_grad():
        model.teacher.backbone.conv1.weight.add_(1.0)
    with pytest.raises(TeacherCheckpointError, match='backbone.conv1.weight'):
        hook.before_train(runner)


def test_teacher_guard_refuses_other_classes(model):
    hook = TeacherGuardHook()
    runner = _runner(model, classes=('ring', 'disk', 'square', 'triangle', 'star', 'cross',
                                     'striped_square', 'checkered_disk'))
    hook.before_run(runner)
    with pytest.raises(TeacherCheckpointError, match='first differ at index 0'):
        hook.before_train(runner)


def test_teacher_guard_refuses_to_resume_with_another_teacher(model):
    hook = TeacherGuardHook()
    runner = _runner(model, resume=True)
    hook.before_run(runner)
    saved = dict(meta=dict(ktan_teacher=dict(path='old.pth', sha256='0' * 64)))
    with pytest.raises(TeacherCheckpointError, match='refusing to resume.*old.pth'):
        hook.after_load_checkpoint(runner, saved)
    hook.after_load_checkpoint(_runner(model, resume=False), saved)  # load_from: allowed


def test_teacher_guard_keeps_the_teacher_frozen(model, recwarn):
    hook = TeacherGuardHook()
    model.teacher.train()
    model.teacher.neck.requires_grad_(True)
    hook.before_train_iter(_runner(model), 0)
    assert not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert len(recwarn) == 2


def test_student_export_hook_writes_a_plain_student(model, tmp_path, tiny_data):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, str(tmp_path))
    runner = _runner(model, classes=('a',))
    runner.cfg, runner.work_dir = cfg, str(tmp_path)
    StudentExportHook().after_train(runner)
    saved = torch.load(tmp_path / 'student_export' / 'student.pth')
    student = model.student.state_dict()
    assert saved['state_dict'].keys() == student.keys()
    assert all(torch.equal(saved['state_dict'][k], v) for k, v in student.items())
    text = (tmp_path / 'student_export' / 'student_config.py').read_text()
    assert 'ktan' not in text.lower() and 'CocoDataset' in text
    assert not any(hook in text for hook in KTAN_HOOKS) and 'disc_' not in text
