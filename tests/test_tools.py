"""End-to-end runs of tools/train.py and tools/test.py on tiny versions of the shipped configs."""
import glob
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config

from ktan_det.datasets import generate_dataset, generate_glyph_dataset
from ktan_det.models import DistillationSetupError
from ktan_det.utils.scalars import scalar_logs

from conftest import KTAN_CFG, REPO, STUDENT_CFG, dump_config, load_tool, tiny_run_config

train_tool, test_tool = load_tool('train'), load_tool('test')
TENSORBOARD = 'visualizer.vis_backends.0.type=TensorboardVisBackend'


def test_train_resume_and_evaluate_a_plain_student(tiny_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = tiny_run_config(STUDENT_CFG, 'data/unused/', work_dir, max_iters=4)
    cfg.default_hooks.checkpoint.interval = 2
    config = dump_config(cfg, tmp_path / 'student.py')
    train_tool.main([config, '--data-root', tiny_data, '--cfg-options', 'train_cfg.max_iters=2',
                     'experiment_name=plain_a'])
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    # --resume loads the checkpoint through torch's safe loading and carries on.
    runner = train_tool.main([config, '--data-root', tiny_data, '--resume',
                              '--cfg-options', 'experiment_name=plain_b'])
    assert runner.iter == 4 and osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    metrics = test_tool.main([config, osp.join(work_dir, 'iter_4.pth'), '--data-root',
                              tiny_data, '--cfg-options', 'experiment_name=plain_c'])
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0 and 'coco/bbox_mAP_s' in metrics
    # TensorBoard instead of the JSON logs, by the switch the guide documents.
    tb_dir = str(tmp_path / 'tensorboard')
    train_tool.main([config, '--data-root', tiny_data, '--work-dir', tb_dir, '--cfg-options',
                     'train_cfg.max_iters=1', 'experiment_name=plain_tb', TENSORBOARD])
    assert glob.glob(osp.join(tb_dir, '*', 'vis_data', 'events.out.tfevents.*'))


def test_training_without_a_teacher_checkpoint_stops_before_building_anything(tiny_data,
                                                                             tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = tiny_run_config(KTAN_CFG, tiny_data, work_dir)
    cfg.model.teacher_ckpt = None  # as the VOC config ships
    with pytest.raises(DistillationSetupError, match=r'teacher_ckpt=None.*model.teacher_ckpt=PATH'):
        train_tool.main([dump_config(cfg, tmp_path / 'ktan.py')])
    assert not osp.exists(work_dir)  # the runner, which makes it, was never built


def test_ktan_run_logs_every_loss_and_evaluates_without_the_teacher(
        tiny_data, tiny_teacher_ckpt, tmp_path):
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    shutil.copy(tiny_teacher_ckpt, teacher_ckpt)
    work_dir = str(tmp_path / 'work')
    cfg = tiny_run_config(KTAN_CFG, tiny_data, work_dir, max_iters=5)
    cfg.model.train_cfg = dict(tgn_iters=1, adv_start_iter=0, disc_steps=1)
    cfg.default_hooks.checkpoint.interval = 3
    config = dump_config(cfg, tmp_path / 'ktan.py')
    runner = train_tool.main([config, '--cfg-options', f'model.teacher_ckpt={teacher_ckpt}',
                              'experiment_name=ktan_a'])
    # After the runner's init_weights and five steps the teacher is still the checkpoint's.
    saved = torch.load(teacher_ckpt)['state_dict']
    teacher = runner.model.teacher.state_dict()
    assert all(torch.equal(teacher[k], v) for k, v in saved.items())

    logged = set().union(*[row.keys() for row in scalar_logs(work_dir)])
    assert {'loss_imitation', 'loss_adv', 'loss_soft', 'disc_loss', 'disc_acc',
            'tgn_loss_cls', 'coco/bbox_mAP'} <= logged
    early = torch.load(osp.join(work_dir, 'iter_3.pth'))['state_dict']
    final = torch.load(osp.join(work_dir, 'iter_5.pth'))['state_dict']
    assert not any(k.startswith('teacher.') for k in final)
    disc_keys = [k for k in final if k.startswith('discriminator.')]
    assert disc_keys and any(not torch.equal(early[k], final[k]) for k in disc_keys)

    os.remove(teacher_ckpt)  # evaluation needs only the student
    metrics = test_tool.main([config, osp.join(work_dir, 'iter_5.pth'),
                              '--cfg-options', 'experiment_name=ktan_b'])
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_demo_trains_the_students_side_by_side_and_reports_the_test_split(tmp_path,
                                                                          monkeypatch):
    demo = load_tool('run_demo')
    calls = []
    teacher = tmp_path / 'runs' / 'teacher_k' / 'teacher.pth'
    teacher.parent.mkdir(parents=True)
    teacher.write_bytes(b'weights')

    def run_variant(variant, seed, teacher_ckpt, root, threads=None):
        calls.append((variant, seed, teacher_ckpt, threads))
        return f'{root}/{variant}'

    def metrics(mAP):
        return {f'coco/bbox_mAP{m}': mAP for m in ('', '_50', '_s', '_m', '_l')}

    monkeypatch.setattr(demo, 'REPO_ROOT', str(tmp_path))
    monkeypatch.setattr(demo, 'ensure_synthetic_dataset', lambda root, **params: None)
    teacher_records = []
    monkeypatch.setattr(demo, 'ensure_teacher', lambda root, records: teacher_records.append(
        records) or str(teacher))
    monkeypatch.setattr(demo, 'run_variant', run_variant)
    monkeypatch.setattr(demo, 'evaluate_on_test',
                        lambda run_dir, config, checkpoint: metrics(0.4))
    monkeypatch.setattr(demo, 'test_metrics',
                        lambda run_dir: metrics(0.3 if run_dir.endswith('ktan') else 0.2))
    monkeypatch.setattr(demo, '_pictures', lambda *args: ['curves.png', 'maps.png'])
    table = demo.main(['--work-dir', str(tmp_path / 'work')])
    assert sorted(calls) == [('ktan', 0, str(teacher), 1), ('plain', 0, str(teacher), 1)]
    assert '| teacher R-50 | 0.400' in table and '| KTAN student R-18 | 0.300' in table
    assert (tmp_path / 'work' / 'demo_results.md').read_text().strip() == table
    assert (tmp_path / 'work_dirs' / 'synthetic_teacher' / 'teacher.pth').read_bytes() == \
        b'weights'
    demo.main(['--work-dir', str(tmp_path / 'work'), '--train-teacher'])
    assert teacher_records == [demo.RECORDS_DIR, None]  # the recorded teacher unless told


def test_gpu_smoke_kit_dry_run(tmp_path):
    """Without a GPU the kit writes its data (COCO layout, COCO scale) and its zoo-shaped
    teacher, builds the distiller from its config and parses every stage's command."""
    from mmengine.config import Config
    smoke = load_tool('gpu_smoke')
    assert smoke.main(['--dry-run', '--work-dir', str(tmp_path)]) == 0
    cfg = Config.fromfile(str(tmp_path / 'ktan_coco_smoke.py'))
    assert cfg.model.teacher_ckpt == str(tmp_path / 'teacher_r101_zoo_style.pth')
    assert cfg.model.student.backbone.init_cfg is None
    commands = smoke.stage_commands(str(tmp_path / 'c.py'), str(tmp_path), gpus=2)
    assert list(commands) == ['float32', 'amp', 'resume', 'ddp-2gpu']
    assert '--amp' in commands['amp'] and '--resume' in commands['resume']
    assert 'ddp-2gpu' not in smoke.stage_commands('c.py', str(tmp_path), gpus=1)


def test_make_synthetic_dataset_takes_a_configs_parameters_and_flags_override_them():
    tool = load_tool('make_synthetic_dataset')
    base = osp.join(osp.dirname(STUDENT_CFG), '_base_', 'synthetic_detection.py')
    generator, params = tool.dataset_params(tool.parse_args(['--out', 'x', '--config', base,
                                                             '--seed', '3', '--test', '0']))
    wanted = dict(Config.fromfile(base).synthetic, seed=3, num_test=0)
    assert generator is generate_dataset and params == wanted and params['scene']['inside']
    assert tool.dataset_params(tool.parse_args(['--out', 'x'])) == (generate_dataset,
                                                                    tool.DEFAULTS)
    glyphs = osp.join(REPO, 'configs', 'glyphs', '_base_', 'glyph_detection.py')
    generator, params = tool.dataset_params(tool.parse_args(['--out', 'x', '--config', glyphs]))
    assert generator is generate_glyph_dataset and params == Config.fromfile(glyphs).glyphs
    coco = osp.join(REPO, 'configs', 'ktan_faster_rcnn_r101_to_r18.py')
    with pytest.raises(SystemExit, match='not one ktan-det generates'):
        tool.dataset_params(tool.parse_args(['--out', 'x', '--config', coco]))
