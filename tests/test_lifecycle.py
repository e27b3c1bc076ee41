"""Resume, export, non-finite steps: the training lifecycle end to end on tiny models."""
import glob
import os.path as osp
import subprocess
import sys
import textwrap
import warnings

import mmdet
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper

from ktan_det.utils.scalars import scalar_logs

from conftest import KTAN_CFG, dump_config, load_tool, tiny_batch, tiny_run_config

train_tool, export_tool = load_tool('train'), load_tool('export_student')


def _tiny_ktan(tiny_data, teacher_ckpt, work_dir, max_iters, interval):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, work_dir, max_iters=max_iters)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.train_cfg = dict(tgn_iters=1, adv_start_iter=0, disc_steps=1)
    cfg.default_hooks.checkpoint.interval = interval
    cfg.train_cfg.val_interval = interval  # validation after each checkpoint, as in the configs
    cfg.randomness = dict(seed=0, deterministic=True)
    return cfg


def _losses_by_iter(work_dir):
    return {row['step']: row['loss'] for row in scalar_logs(work_dir) if 'loss' in row}


def _update_counts(checkpoint):
    """Adam's step count of the student's and the discriminator's optimizers (the most any of
    their parameters took: the student's wrapper holds T2S too, trained only in TGN)."""
    optimizers = torch.load(checkpoint)['optimizer']
    return tuple(max(int(s['step']) for s in optimizers[name]['state'].values())
                 for name in ('student', 'discriminator'))


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tiny_data, tiny_teacher_ckpt,
                                                                  tmp_path):
    def two_disc_steps(work_dir):
        cfg = _tiny_ktan(tiny_data, tiny_teacher_ckpt, work_dir, 4, 2)
        cfg.model.train_cfg.disc_steps = 2
        return cfg

    straight = str(tmp_path / 'straight')
    config = dump_config(two_disc_steps(straight), tmp_path / 'straight.py')
    train_tool.main([config, '--cfg-options', 'experiment_name=straight'])
    resumed = str(tmp_path / 'resumed')
    config = dump_config(two_disc_steps(resumed), tmp_path / 'resumed.py')
    # "Killed" after iteration 2 (past the TGN stage): the first process ran only that far.
    train_tool.main([config, '--cfg-options', 'train_cfg.max_iters=2',
                     'experiment_name=first_half'])
    runner = train_tool.main([config, '--resume', '--cfg-options',
                              'experiment_name=second_half'])
    assert runner.iter == 4
    expected, got = _losses_by_iter(straight), _losses_by_iter(resumed)
    assert sorted(got) == sorted(expected) == [1, 2, 3, 4]
    for step in (3, 4):
        assert got[step] == pytest.approx(expected[step], rel=1e-5), step
    final_a = torch.load(osp.join(straight, 'iter_4.pth'))['state_dict']
    final_b = torch.load(osp.join(resumed, 'iter_4.pth'))['state_dict']
    for key in final_a:
        torch.testing.assert_close(final_b[key], final_a[key], rtol=1e-4, atol=1e-6)
    # The discriminator runs from iteration 2 (after the 1-iteration TGN stage), 2 updates per
    # student update, and a resume keeps the count.
    assert _update_counts(osp.join(resumed, 'iter_2.pth')) == (2, 2)
    assert _update_counts(osp.join(resumed, 'iter_4.pth')) == (4, 6)
    assert _update_counts(osp.join(straight, 'iter_4.pth')) == (4, 6)


STOCK_MMDET = textwrap.dedent('''
    import runpy, sys

    class NoKtan:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] == 'ktan_det':
                raise ImportError('ktan_det is not installed in this environment')

    sys.meta_path.insert(0, NoKtan())
    config, checkpoint, image, work_dir, test_tool = sys.argv[1:]
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=config, weights=checkpoint, device='cpu',
                               show_progress=False)
    result = inferencer(image, no_save_vis=True)
    print('inferencer predictions:', len(result['predictions'][0]['bboxes']))
    sys.argv = [test_tool, config, checkpoint, '--work-dir', work_dir]
    runpy.run_path(test_tool, run_name='__main__')
    assert not [m for m in sys.modules if m.startswith('ktan_det')]
    print('STOCK MMDETECTION OK')
''')


def test_exported_student_runs_in_stock_mmdetection(tiny_data, tiny_teacher_ckpt, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = _tiny_ktan(tiny_data, tiny_teacher_ckpt, work_dir, 2, 2)
    cfg.train_cfg.val_interval = 1  # a best checkpoint that may be another than the last
    config = dump_config(cfg, tmp_path / 'ktan.py')
    train_tool.main([config, '--cfg-options', 'experiment_name=export'])
    hook_ckpt = osp.join(work_dir, 'student_export', 'student.pth')
    tool_ckpt, tool_cfg = export_tool.main([osp.join(work_dir, 'iter_2.pth'),
                                            str(tmp_path / 'exported')])
    a, b = torch.load(hook_ckpt)['state_dict'], torch.load(tool_ckpt)['state_dict']
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The best checkpoint by val mAP is exported too, under a name that says so.
    best, = glob.glob(osp.join(work_dir, 'best_coco_bbox_mAP_iter_*.pth'))
    exported_best = torch.load(osp.join(work_dir, 'student_export', 'student_best.pth'))
    best_student = {k[len('student.'):]: v for k, v in torch.load(best)['state_dict'].items()
                    if k.startswith('student.')}
    assert exported_best['state_dict'].keys() == best_student.keys()
    assert all(torch.equal(exported_best['state_dict'][k], v) for k, v in best_student.items())
    assert exported_best['meta']['exported_from'] == best

    test_py = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
    image = osp.join(tiny_data, 'val', '000000.png')
    result = subprocess.run(
        [sys.executable, '-c', STOCK_MMDET, tool_cfg, tool_ckpt, image,
         str(tmp_path / 'stock'), test_py],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'STOCK MMDETECTION OK' in result.stdout
    assert 'coco/bbox_mAP' in result.stdout + result.stderr


def test_non_finite_loss_skips_the_step_and_training_goes_on(tiny_data, tiny_teacher_ckpt,
                                                             tmp_path):
    cfg = _tiny_ktan(tiny_data, tiny_teacher_ckpt, str(tmp_path), 4, 4)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = tiny_batch(cfg)
    MessageHub.get_current_instance().update_info('iter', 2)
    healthy = model.loss_imitation.forward
    model.loss_imitation.forward = lambda *args: healthy(*args) * float('nan')
    before = {k: v.clone() for k, v in model.student.state_dict().items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        logs = model.train_step(batch, optim)
    assert any('non-finite loss (loss, loss_imitation)' in str(w.message) for w in caught)
    assert logs['skipped_steps'] == 1 and model.num_skipped_steps == 1
    after = model.student.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.student.parameters())
    model.loss_imitation.forward = healthy
    logs = model.train_step(batch, optim)
    # The count goes on being logged (MMEngine logs only what is in the hub at its interval)
    # and is saved with the model, so a resumed run keeps it.
    assert torch.isfinite(logs['loss']) and logs['skipped_steps'] == 1
    assert any(not torch.equal(before[k], v) for k, v in model.student.state_dict().items())
    resumed = MODELS.build(cfg.model)
    resumed.load_state_dict(model.state_dict())
    assert resumed.num_skipped_steps == 1


def _tiny_epoch_ktan(tiny_data, teacher_ckpt, work_dir, max_epochs):
    """The tiny KTAN run on an epoch loop, as the real-data configs train: 4 images, 2
    iterations an epoch; adversarial start and warm-up, and the stop, given in epochs."""
    cfg = _tiny_ktan(tiny_data, teacher_ckpt, work_dir, 2, 1)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=3)
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=True)
    cfg.train_dataloader.dataset.indices = 4
    cfg.model.train_cfg = dict(tgn_iters=0, adv_start_iter=dict(epoch=1), disc_steps=1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=True, interval=1,
                                        save_best='coco/bbox_mAP', rule='greater')
    cfg.log_processor = dict(by_epoch=True)
    for hook in cfg.custom_hooks:
        if hook.type == 'KTANLossWeightHook':
            hook.update(warmup_iters=dict(adv=dict(epoch=1)), stop_epoch=2)
    return cfg


def test_epoch_loop_starts_ramps_and_stops_by_epoch_and_resumes_at_an_epoch(
        tiny_data, tiny_teacher_ckpt, tmp_path):
    straight = str(tmp_path / 'straight')
    cfg = _tiny_epoch_ktan(tiny_data, tiny_teacher_ckpt, straight, 3)
    train_tool.main([dump_config(cfg, tmp_path / 'straight.py')])
    rows = {row['step']: row for row in scalar_logs(straight) if 'loss' in row}
    assert sorted(rows) == [1, 2, 3, 4, 5, 6]  # 3 epochs of 2 iterations
    assert [rows[i].get('scale_adv') for i in range(1, 7)] == [0.0, 0.0, 0.5, 1.0, 0.0, 0.0]
    assert 'loss_adv' in rows[3] and 'loss_adv' not in rows[2]
    assert 'loss_imitation' in rows[4] and not any(  # from epoch 2 on: the student alone
        key.startswith(('loss_imitation', 'loss_adv', 'loss_soft', 'disc_loss', 'disc_acc',
                        'feat_dist')) for i in (5, 6) for key in rows[i])
    assert osp.isfile(osp.join(straight, 'student_export', 'student_best.pth'))

    resumed = str(tmp_path / 'resumed')
    config = dump_config(_tiny_epoch_ktan(tiny_data, tiny_teacher_ckpt, resumed, 3),
                         tmp_path / 'resumed.py')
    train_tool.main([config, '--cfg-options', 'train_cfg.max_epochs=2'])  # "killed" at epoch 2
    runner = train_tool.main([config, '--resume'])
    assert (runner.epoch, runner.iter) == (3, 6)
    got = _losses_by_iter(resumed)
    for step in (5, 6):
        assert got[step] == pytest.approx(rows[step]['loss'], rel=1e-5), step
