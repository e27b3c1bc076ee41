from types import SimpleNamespace

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.logging import MessageHub
from mmengine.runner import EpochBasedTrainLoop

import ktan_det.hooks
from ktan_det.hooks import (
    DiscriminatorMonitorHook,
    DistillationMonitorHook,
    FiniteWeightsHook,
    KTANLossWeightHook,
    StudentExportHook,
    TeacherCheckHook,
    TeacherEvalHook,
    TeacherFreezeHook,
    TeacherGuardHook,
    TeacherRecordHook,
)
from ktan_det.models import TeacherCheckpointError
from ktan_det.models.schedule import KTAN_LOSS_NAMES, KTANSchedule, RunLength, resolve_point

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


class _Loader(SimpleNamespace):
    def __len__(self):
        return self.length


def _runner(model, iteration=0, classes=None, resume=False, max_iters=1000,
            iters_per_epoch=None):
    dataset = SimpleNamespace(metainfo=dict(classes=classes)) if classes else None
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop) if iters_per_epoch else None
    return SimpleNamespace(model=model, iter=iteration, epoch=0, logger=_Logger(), hooks=[],
                           message_hub=MessageHub.get_instance('hook-tests'),
                           train_dataloader=_Loader(dataset=dataset, length=iters_per_epoch),
                           train_loop=loop, max_iters=max_iters, _resume=resume)


def test_loss_weight_schedule_ramps_and_stops(model):
    schedule = KTANSchedule(KTAN_LOSS_NAMES, tgn=10, adv_start=2,
                            warmup=dict(adv=4, imitation=2), stop=20)
    scales = [schedule.stage(i).scales for i in range(8, 22)]
    assert [s['imitation'] for s in scales[:5]] == [0.0, 0.0, 0.5, 1.0, 1.0]  # iters 8..12
    assert [s['adv'] for s in scales[3:9]] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]  # iters 11..16
    assert scales[-3]['soft'] == 1.0 and scales[-2] == {'imitation': 0.0, 'adv': 0.0,
                                                        'soft': 0.0}
    assert [schedule.stage(i).tgn for i in (9, 10)] == [True, False]
    hook = KTANLossWeightHook(stop_epoch=2)
    hook.before_train(_runner(model, max_iters=100, iters_per_epoch=10))
    assert model.schedule.stage(19).scales['soft'] == 1.0
    assert model.schedule.stage(20).distilling == ()
    with pytest.raises(ValueError, match='unknown losses'):
        KTANLossWeightHook(warmup_iters=dict(feature=3))


def test_schedule_points_in_epochs_and_fractions_need_the_run_length():
    schedule = KTANSchedule(['imitation', 'adv'], adv_start=dict(fraction=0.25),
                            warmup=dict(adv=dict(epoch=1)), stop=dict(fraction=0.9))
    with pytest.raises(ValueError, match='KTANLossWeightHook'):
        schedule.stage(0)
    schedule.set_run(RunLength(max_iters=40, iters_per_epoch=8))
    assert [schedule.stage(i).adversarial for i in (9, 10)] == [False, True]
    assert schedule.stage(13).scales['adv'] == 0.5  # 4 of the 8 ramp iterations done
    assert schedule.stage(36).distilling == () and 'imitation' in schedule.stage(35).distilling
    assert resolve_point(dict(epoch=3), RunLength(40, 8), 'x') == 24
    for bad in (dict(epochs=1), dict(fraction=1.5), -1, 2.5):
        with pytest.raises((TypeError, ValueError)):
            resolve_point(bad, RunLength(40, 8), 'x')
    with pytest.raises(ValueError, match='epoch-based train loop'):
        resolve_point(dict(epoch=1), RunLength(40), 'stop')
    assert resolve_point(dict(fraction=0.29), RunLength(100), 'x') == 29  # not 28.999...
    assert resolve_point(9000.0, None, 'x') == 9000
    with pytest.raises(TypeError, match='stop'):  # at configuration, not at the first step
        KTANSchedule(['imitation'], stop='end')
    # A stop inside the TGN stage ends it too: after the stop the teacher does not run.
    stopped = KTANSchedule(['imitation'], tgn=10, stop=4)
    assert stopped.stage(3).tgn and not stopped.stage(4).tgn
    assert stopped.stage(4).distilling == ()


def test_loss_weight_hook_hands_the_schedule_its_settings_and_logs_the_scales(model):
    start = model.schedule.start('adv')
    hook = KTANLossWeightHook(warmup_iters=dict(adv=10))
    runner = _runner(model, iteration=start + 4)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    assert model.schedule.stage(start + 4).scales == dict(imitation=1.0, adv=0.5, soft=1.0)
    assert runner.message_hub.get_scalar('train/scale_adv').current() == 0.5
    KTANLossWeightHook(stop_iter=1).before_train(_runner(model))
    assert model.schedule.stage(1).distilling == ()


def test_balance_scales_multiply_the_ramps_and_survive_a_state_dict_round_trip(model):
    model.schedule.set_balance('imitation', 0.25)
    assert model.schedule.stage(10 ** 6).scales['imitation'] == 0.25
    state = {k: v.clone() for k, v in model.state_dict().items()}  # as a checkpoint holds it
    assert float(state['schedule.balance'][0]) == 0.25
    model.schedule.set_balance('imitation', 1.0)
    model.load_state_dict(state)
    assert model.schedule.steady_stage().scales['imitation'] == 0.25


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


def test_the_names_configs_use_install_every_part():
    guard = TeacherGuardHook(evaluate=True)
    assert [type(h) for h in guard.hooks] == [TeacherCheckHook, TeacherRecordHook,
                                              TeacherFreezeHook, TeacherEvalHook]
    assert [type(h) for h in TeacherGuardHook().hooks] == [TeacherCheckHook,
                                                           TeacherRecordHook, TeacherFreezeHook]
    monitor = DistillationMonitorHook(patience=7)
    assert [type(h) for h in monitor.hooks] == [DiscriminatorMonitorHook, FiniteWeightsHook]
    assert monitor.hooks[0].patience == 7
    for group in (guard, monitor):  # the group is called wherever a part acts
        assert all(set(part.get_triggered_stages()) <= set(group.get_triggered_stages())
                   for part in group.hooks)


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
    assert not any(hook in text for hook in ktan_det.hooks.__all__) and 'disc_' not in text
