"""The benchmarks' own logic (the long runs themselves are not tests)."""
import glob
import json
import math
import os
import os.path as osp
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from benchmarks import code_version, records, runs, variants
from benchmarks.report import (
    quality_table,
    quick_prediction,
    quick_prediction_table,
    regime_checks,
    regime_table,
    summarize,
    tuning_table,
)
from benchmarks.runs import read_config
from benchmarks.speed import build_step, fixed_batch
from benchmarks.variants import (
    KTAN_CFG,
    KTAN_EXPERIMENTS,
    RESUME_INTERVAL,
    STUDENT_CFG,
    TEACHER_CFG,
    VARIANTS,
    config_hash,
    ktan_config,
    longer_schedule_options,
    run_identity,
    run_variant,
    variant_config,
)
from ktan_det.utils.checkpoint import load_weights

from conftest import load_tool


def _metrics(mAP):
    return {f'coco/{m}': mAP for m in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m',
                                       'bbox_mAP_l')}


def test_summary_gap_closed_and_spread():
    results = {'plain': [_metrics(0.10), _metrics(0.12)],
               'ktan': [_metrics(0.20), _metrics(0.21)],
               'soft': [_metrics(0.12), _metrics(0.115)]}
    summary = summarize(results, _metrics(0.31))
    assert summary['ktan']['gap_closed'] == pytest.approx((0.205 - 0.11) / (0.31 - 0.11))
    assert summary['ktan']['spread'] == pytest.approx(0.02)
    assert summary['ktan']['significant'] and not summary['soft']['significant']
    assert summary['plain']['bbox_mAP']['std'] == pytest.approx(math.sqrt(2) * 0.01)
    table = quality_table(summary, _metrics(0.31))
    assert '| ktan | 2 | 0.205 ± 0.007' in table and '48%' in table and '| yes |' in table


def test_regime_checks_half_the_teacher_plateau_and_gap_over_spread():
    teacher = _metrics(0.40)
    results = {'plain': [_metrics(0.25), _metrics(0.23), _metrics(0.24)],
               'plain-1.5x': [_metrics(0.27)]}
    checks = regime_checks(results, teacher, 'plain-1.5x', 1.5)
    half, plateau, gap = checks.values()
    assert half['value'] == pytest.approx(0.6) and half['holds']
    assert plateau['value'] == pytest.approx(0.08) and plateau['holds']  # 0.27 / 0.25, seed 0
    assert gap['value'] == pytest.approx(8.0) and gap['holds']  # 0.16 over a 0.02 range
    results['plain-1.5x'] = [_metrics(0.30)]
    results['plain'][1] = _metrics(0.18)
    _, plateau, gap = regime_checks(results, teacher, 'plain-1.5x', 1.5).values()
    assert not plateau['holds'] and not gap['holds']  # +20%; gap 0.177 < 4 x 0.07
    lines = regime_table(checks).splitlines()
    assert lines[3] == '| gain of the 1.5x schedule (same seed) | 0.08 | < 0.10 | yes |'


def test_regime_mode_runs_plain_at_every_seed_and_longer_at_the_first(tmp_path, monkeypatch):
    tool = load_tool('benchmark_quality')
    trained, test_mAP = [], {}
    mAPs = {('plain', 0): 0.25, ('plain-1.5x', 0): 0.26, ('plain', 1): 0.24, ('plain', 2): 0.245}

    def run_variant(variant, seed, *args):
        trained.append((variant, seed))
        run_dir = tmp_path / f'{variant}_seed{seed}'
        run_dir.mkdir()
        (run_dir / 'run.json').write_text(json.dumps({'code': 'c0de', 'key': 'k'}))
        test_mAP[str(run_dir)] = mAPs[(variant, seed)]
        return str(run_dir)

    teacher_dir = tmp_path / 'teacher'
    teacher_dir.mkdir()
    (teacher_dir / 'run.json').write_text(json.dumps({'code': 'c0de', 'key': 't'}))
    monkeypatch.setattr(tool, 'ensure_synthetic_dataset', lambda *a, **k: None)
    monkeypatch.setattr(tool, 'run_variant', run_variant)
    monkeypatch.setattr(tool, 'test_metrics', lambda run_dir: _metrics(test_mAP[run_dir] - 0.1))
    # The regime is a choice, made on val; the table reports test.
    monkeypatch.setattr(tool, 'run_val_metrics', lambda run_dir: _metrics(
        0.40 if run_dir.endswith('teacher') else test_mAP[run_dir]))
    monkeypatch.setattr(tool, 'teacher_checkpoint', lambda work: str(teacher_dir / 'teacher.pth'))
    monkeypatch.setattr(tool, 'ensure_teacher', lambda work, records: None)
    monkeypatch.setattr(tool, 'evaluate_on_test', lambda *a, **k: _metrics(0.40))
    tool.main(['--regime', '--records-dir', '', '--out-dir', str(tmp_path / 'out'),
               '--work-dir', str(tmp_path)])
    assert trained == [('plain', 0), ('plain-1.5x', 0), ('plain', 1), ('plain', 2)]
    result = json.loads((tmp_path / 'out' / 'regime.json').read_text())
    assert result['variants']['plain']['seeds'] == [0, 1, 2]
    assert result['variants']['plain-1.5x']['seeds'] == [0]
    assert [c['holds'] for c in result['regime'].values()] == [True, True, True]
    assert '| gain of the 1.5x schedule (same seed) | 0.04 |' in (
        tmp_path / 'out' / 'regime.md').read_text()


def test_quick_mode_prediction_against_the_full_table():
    results = {'plain': [_metrics(m) for m in (0.30, 0.31, 0.32)],
               'ktan': [_metrics(m) for m in (0.36, 0.37, 0.33)],
               'pkd': [_metrics(m) for m in (0.305, 0.31, 0.33)],
               'cwd': [_metrics(m) for m in (0.30, 0.30, 0.30)]}
    prediction = quick_prediction(results, [0, 1, 2], _metrics(0.5), ('plain', 'ktan', 'pkd'),
                                  (0, 1))
    ktan, pkd = prediction['ktan'], prediction['pkd']
    assert list(prediction) == ['ktan', 'pkd']
    assert ktan['quick_diff'] == pytest.approx(0.06) and ktan['full_diff'] == pytest.approx(
        0.13 / 3)
    assert ktan['quick_gap_closed'] == pytest.approx(0.06 / 0.195)
    assert ktan['verdict_agrees'] and pkd['verdict_agrees']  # beyond the spread; within it
    results['ktan'][2] = _metrics(0.30)  # the full mean drops within the spread
    assert not quick_prediction(results, [0, 1, 2], _metrics(0.5), ('plain', 'ktan'),
                                (0, 1))['ktan']['verdict_agrees']
    assert quick_prediction(results, [1, 2], _metrics(0.5), ('plain', 'ktan'), (0, 1)) is None
    assert '| ktan | +0.060 | +0.043 | 31% | 23% | yes |' in quick_prediction_table(prediction)


def test_tuning_table_marks_the_chosen_scale_per_method():
    runs = {('ktan', 0.3): _metrics(0.045), ('ktan', 1.0): _metrics(0.05),
            ('ktan', 3.0): _metrics(0.033), ('pkd', 1.0): _metrics(0.051),
            ('pkd', 3.0): _metrics(0.055)}
    lines = tuning_table(runs, {'ktan': 1.0, 'pkd': 3.0}).splitlines()
    assert lines[0] == '| method | x0.3 | x1 | x3 | trials |'
    assert lines[2] == '| ktan | 0.045 | **0.050** | 0.033 | 3 |'
    assert lines[3] == '| pkd |  | 0.051 | **0.055** | 2 |'


def test_design_experiments_build(tmp_path):
    for variant in KTAN_EXPERIMENTS:
        if variant.startswith(('ktan-adv-', 'ktan-soft-teacher', 'ktan-soft-objectness')):
            config, options = variant_config(variant, None, str(tmp_path))
            MODELS.build(read_config(config, [*options, 'model.teacher_ckpt=None']).model)


@pytest.fixture(scope='module')
def student():
    return read_config(STUDENT_CFG)


@pytest.mark.parametrize('variant', VARIANTS + tuple(KTAN_EXPERIMENTS))
def test_every_variant_has_a_config_that_differs_only_in_distillation(variant, student,
                                                                       tmp_path):
    config, options = variant_config(variant, 'teacher.pth', str(tmp_path))
    cfg = read_config(config, options)  # no custom imports: MMRazor is for benchmarks only
    assert cfg.train_cfg == student.train_cfg and cfg.train_dataloader == \
        student.train_dataloader
    if variant == 'plain':
        assert config == STUDENT_CFG
    elif variant in ('cwd', 'pkd'):
        assert cfg.model.architecture.type == student.model.type
        assert cfg.model.teacher_ckpt == 'teacher.pth'
    else:
        assert config == ktan_config(variant) and cfg.model.teacher_ckpt == 'teacher.pth'
    if variant != 'plain':  # scaled weights: another config, so another cached run
        assert read_config(*variant_config(variant, 'teacher.pth', str(tmp_path), 3.0)) \
            .model != cfg.model


def test_weight_scale_multiplies_the_weights_the_variant_trains_with(tmp_path):
    base = read_config(KTAN_CFG).model
    model = read_config(*variant_config('ktan-imitation-x1', 'teacher.pth', str(tmp_path),
                                        0.5)).model
    assert model.loss_imitation.loss_weight == pytest.approx(1.0 * 0.5)
    assert model.loss_adv.loss_weight == pytest.approx(base.loss_adv.loss_weight * 0.5)
    model = read_config(*variant_config('imitation', 'teacher.pth', str(tmp_path), 0.5)).model
    assert model.loss_adv is None and model.loss_soft is None
    assert model.loss_imitation.loss_weight == pytest.approx(
        base.loss_imitation.loss_weight * 0.5)


def test_disc_student_lr_experiment_schedules_the_discriminator_like_the_student(tmp_path):
    cfg = read_config(*variant_config('ktan-disc-student-lr', 'teacher.pth', str(tmp_path)))
    assert cfg.param_scheduler.discriminator == cfg.param_scheduler.student
    assert read_config(KTAN_CFG).param_scheduler.discriminator != cfg.param_scheduler.student
    assert cfg.model == read_config(KTAN_CFG, ['model.teacher_ckpt=teacher.pth']).model


def test_runs_are_prepared_from_several_threads(tmp_path):
    # `--jobs N` prepares runs in threads; MMEngine's config parser alone is not thread-safe.
    def prepare(variant):
        return config_hash(*variant_config(variant, 'teacher.pth', str(tmp_path)))
    jobs = ['plain', 'ktan', 'cwd'] * 2
    with ThreadPoolExecutor(2) as pool:
        hashes = list(pool.map(prepare, jobs))
    assert hashes[:3] == hashes[3:] and len(set(hashes)) == 3


def test_cached_runs_are_found_from_another_checkout(tmp_path, monkeypatch):
    # The KTAN config names its teacher config by absolute path.
    options = ['model.teacher_ckpt=teacher.pth']
    here = config_hash(KTAN_CFG, options)
    checkout = tmp_path / 'moved'
    shutil.copytree(osp.join(variants.REPO_ROOT, 'configs'), checkout / 'configs')
    monkeypatch.setattr(variants, 'REPO_ROOT', str(checkout))
    moved = str(checkout / osp.relpath(KTAN_CFG, runs.REPO_ROOT))
    assert config_hash(moved, options) == here


@pytest.fixture
def trained_commands(monkeypatch):
    """The training commands the benchmarks start, each 'finished' at once (no training)."""
    commands = []

    class FinishedProcess:
        stdout, returncode = [], 0

        def __init__(self, command, **kwargs):
            commands.append(command)

        def wait(self):
            return 0

    monkeypatch.setattr(runs.subprocess, 'Popen', FinishedProcess)
    return commands


def test_runs_save_to_resume_from_without_changing_their_cached_name(tmp_path,
                                                                       trained_commands):
    commands = trained_commands
    run_dir = run_variant('plain', 0, 'teacher.pth', str(tmp_path))
    key = run_identity(STUDENT_CFG, ['randomness.seed=0'], None)['key']
    assert osp.basename(run_dir) == f'plain_seed0_{key}'
    options = commands[0][commands[0].index('--cfg-options') + 1:]
    assert read_config(STUDENT_CFG, options).default_hooks.checkpoint.interval == RESUME_INTERVAL


def test_mmrazor_runs_import_the_benchmarks_package_from_the_checkout(tmp_path, monkeypatch):
    # tools/train.py trains the generated MMRazor configs in a subprocess: the custom imports
    # that are not installed (benchmarks/) must come from the environment mmrazor_env() gives.
    (tmp_path / 'bench-packages' / 'mmrazor').mkdir(parents=True)
    monkeypatch.setattr(variants, 'BENCH_PACKAGES', str(tmp_path / 'bench-packages'))
    cfg = read_config(*variant_config('cwd', 'teacher.pth', str(tmp_path)))
    local = [m for m in cfg.custom_imports.imports if m.startswith('benchmarks.')]
    assert local == ['benchmarks.mmrazor_compat']
    # -S: not through site-packages, where a `setup.py develop` install puts the checkout.
    subprocess.run([sys.executable, '-S', '-c', f'import {local[0]}'], cwd=str(tmp_path),
                   env=variants.mmrazor_env(), check=True)


def test_speed_steps_run_for_ktan_variants(tmp_path, tiny_data):
    teacher = MODELS.build(Config.fromfile(TEACHER_CFG).model)
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    batch = fixed_batch(1, tiny_data)
    for variant in ('plain', 'floor', 'ktan-no-adv', 'ktan-cached'):
        build_step(variant, path, batch)()
    with pytest.raises(KeyError, match='unknown speed variant'):
        build_step('fitnets', path, batch)
    assert osp.isfile(KTAN_CFG)


def _copy_project(tmp_path):
    for part in ('ktan_det', 'tools'):
        shutil.copytree(osp.join(variants.REPO_ROOT, part), tmp_path / part,
                        ignore=shutil.ignore_patterns('__pycache__'))
    return tmp_path


def test_code_version_follows_code_but_not_docstrings_or_unrelated_modules(tmp_path,
                                                                         monkeypatch):
    repo = _copy_project(tmp_path)
    monkeypatch.setattr(code_version, 'REPO_ROOT', str(repo))
    teacher, ktan = (read_config(c).pretty_text for c in (TEACHER_CFG, KTAN_CFG))
    assert 'ktan_det/datasets/synthetic.py' in code_version.project_files(teacher)
    assert 'ktan_det/models/distiller.py' not in code_version.project_files(teacher)
    assert {'ktan_det/models/distiller.py', 'ktan_det/models/t2s.py',  # t2s: built by name
            'ktan_det/engine/optim_constructor.py'} <= set(code_version.project_files(ktan))
    before = code_version.code_version(teacher), code_version.code_version(ktan)

    def edit(path, old, new):
        text = (repo / path).read_text()
        assert old in text
        (repo / path).write_text(text.replace(old, new, 1))

    edit('ktan_det/datasets/synthetic.py', 'Each image is drawn', 'Each picture is drawn')
    edit('ktan_det/models/distiller.py', '# Each part', '# Every part')  # a comment
    assert (code_version.code_version(teacher), code_version.code_version(ktan)) == before
    edit('ktan_det/models/distiller.py', 'self.disc_steps = int(', 'self.disc_steps = round(')
    assert code_version.code_version(teacher) == before[0]
    assert code_version.code_version(ktan) != before[1]
    edit('ktan_det/datasets/synthetic.py', 'MIN_BOX_SIDE = 4', 'MIN_BOX_SIDE = 5')
    assert code_version.code_version(teacher) != before[0]


def test_run_key_covers_config_code_and_threads():
    one = run_identity(STUDENT_CFG, ['randomness.seed=0'], 1)
    assert set(one) == {'config', 'code', 'threads', 'key'}
    assert run_identity(STUDENT_CFG, ['randomness.seed=0'], 1) == one
    assert run_identity(STUDENT_CFG, ['randomness.seed=0'], 2)['key'] != one['key']
    assert run_identity(STUDENT_CFG, ['randomness.seed=1'], 1)['key'] != one['key']


def test_longer_schedule_stretches_iterations_lr_steps_and_saving():
    cfg = read_config(STUDENT_CFG, longer_schedule_options(STUDENT_CFG, 1.5))
    base = read_config(STUDENT_CFG)
    n = int(base.train_cfg.max_iters * 1.5)
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == n
    assert cfg.default_hooks.checkpoint.interval == n
    assert [s.end for s in cfg.param_scheduler] == [int(s.end * 1.5)
                                                    for s in base.param_scheduler]
    assert cfg.param_scheduler[-1].end == n and cfg.model == base.model


def test_test_split_metrics_are_evaluated_once_and_kept(tmp_path, monkeypatch):
    calls = []

    def fake_test(command, **kwargs):
        calls.append(command)
        log_dir = tmp_path / 'test' / '20261201_000000'
        log_dir.mkdir(parents=True)
        (log_dir / '20261201_000000.json').write_text(
            '{"coco/bbox_mAP": 0.25, "coco/bbox_mAP_50": 0.5, "time": 1.0}')
        return subprocess.CompletedProcess(command, 0, 'ok', '')

    monkeypatch.setattr(runs.subprocess, 'run', fake_test)
    metrics = runs.evaluate_on_test(str(tmp_path), STUDENT_CFG, ['randomness.seed=0'])
    assert metrics == {'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.5}
    test_cfg = read_config(STUDENT_CFG)
    assert calls[0][1] == runs.TEST_TOOL and calls[0][3].endswith(
        f'iter_{test_cfg.train_cfg.max_iters}.pth')
    assert test_cfg.test_evaluator.ann_file.endswith('annotations/test.json')
    assert runs.evaluate_on_test(str(tmp_path), STUDENT_CFG) == metrics and len(calls) == 1


def test_test_split_evaluation_of_a_real_run(tiny_ktan_run, tiny_data, tmp_path):
    config, work_dir, checkpoint = tiny_ktan_run
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    shutil.copy(checkpoint, run_dir / 'iter_3.pth')
    metrics = runs.evaluate_on_test(str(run_dir), config, [
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False'])
    assert set(metrics) >= {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'}
    # The split tested is the test split: 4 images in the tiny set, 2 batches (val: 3).
    log = (run_dir / 'test.log').read_text()
    assert 'Iter(test) [2/2]' in log and 'Iter(test) [3/3]' not in log


def _finished_run(run_dir, val_mAP, test_mAP):
    """A run directory as a finished run leaves it (no checkpoint needed here)."""
    vis = run_dir / '20261201_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(json.dumps({'coco/bbox_mAP': val_mAP, 'step': 10}) + '\n')
    (run_dir / runs.TEST_METRICS).write_text(json.dumps({'coco/bbox_mAP': test_mAP}))
    (run_dir / 'run.json').write_text(json.dumps({'key': 'abc', 'variant': 'plain'}))
    (run_dir / 'train.log').write_text(f'{runs.TRAINED_FOR}10.25 min\nlog line\n'
                                       f'{runs.TRAINED_FOR}5.00 min\n')


def test_records_keep_a_finished_runs_results_for_a_later_session(tmp_path, monkeypatch):
    run_dir = tmp_path / 'work' / 'plain_seed0_abc'
    _finished_run(run_dir, 0.2, 0.19)
    path = records.save_record(str(run_dir), str(tmp_path / 'records'))
    saved = json.loads(open(path).read())
    assert saved['val'] == {'coco/bbox_mAP': 0.2} and saved['test'] == {'coco/bbox_mAP': 0.19}
    assert saved['train_minutes'] == 15.2 and saved['run']['key'] == 'abc'
    # Another session, another machine: an empty work directory.
    fresh = tmp_path / 'other' / 'plain_seed0_abc'
    assert records.restore_record(str(fresh), str(tmp_path / 'records'))
    assert not records.restore_record(str(tmp_path / 'other' / 'plain_seed1_def'),
                                      str(tmp_path / 'records'))
    monkeypatch.setattr(runs.subprocess, 'run', None)  # nothing is evaluated again
    assert runs.evaluate_on_test(str(fresh), STUDENT_CFG) == {'coco/bbox_mAP': 0.19}
    assert records.run_val_metrics(str(fresh)) == {'coco/bbox_mAP': 0.2}


def test_recorded_runs_are_not_trained_and_the_teacher_only_for_runs_that_need_it(
        tmp_path, trained_commands):
    trained, teacher_calls = trained_commands, []
    records_dir, work = str(tmp_path / 'records'), str(tmp_path / 'work')
    key = run_identity(STUDENT_CFG, ['randomness.seed=0'], None)['key']
    recorded = tmp_path / 'earlier' / f'plain_seed0_{key}'
    _finished_run(recorded, 0.2, 0.19)
    records.save_record(str(recorded), records_dir)

    def teacher():
        teacher_calls.append(1)

    run_dir = run_variant('plain', 0, 'teacher.pth', work, records_dir=records_dir,
                          train_teacher=teacher)
    assert osp.basename(run_dir) == recorded.name and not trained and not teacher_calls
    run_variant('plain', 1, 'teacher.pth', work, records_dir=records_dir,
                train_teacher=teacher)
    assert len(trained) == 1 and not teacher_calls  # trained, without the teacher
    run_variant('ktan', 0, 'teacher.pth', work, records_dir=records_dir, train_teacher=teacher)
    assert len(trained) == 2 and teacher_calls == [1]


def test_the_teacher_trains_once_and_a_later_session_restores_the_same_weights(
        tmp_path, monkeypatch):
    records_dir = str(tmp_path / 'records')
    trained = []
    weights = {'conv.weight': torch.randn(8, 3, 3, 3), 'bn.num_batches_tracked': torch.tensor(7)}

    def train(config, run_dir, name, *args, **kwargs):
        trained.append(run_dir)
        final = osp.join(run_dir, 'iter_9000.pth')
        torch.save(dict(state_dict=weights, meta=dict(iter=9000)), final)
        return final

    def evaluate_on_test(run_dir, config, checkpoint):
        evaluated.append(checkpoint)
        with open(osp.join(run_dir, runs.TEST_METRICS), 'w') as f:
            json.dump({'coco/bbox_mAP': 0.5}, f)

    evaluated = []
    monkeypatch.setattr(variants, 'train', train)
    monkeypatch.setattr(variants, 'evaluate_on_test', evaluate_on_test)
    lean = variants.ensure_teacher(str(tmp_path / 'session1'), records_dir)
    assert evaluated == [lean]  # the rounded weights the students learn from
    here, _ = load_weights(lean)
    # Rounded to float16 precision, kept in float32 (the teacher check compares dtypes too).
    assert here['conv.weight'].dtype == torch.float32
    assert torch.equal(here['conv.weight'], weights['conv.weight'].half().float())
    assert not torch.equal(here['conv.weight'], weights['conv.weight'])
    assert here['bn.num_batches_tracked'] == 7
    recorded = glob.glob(osp.join(records_dir, 'teacher_*.pth'))
    assert len(recorded) == 1 and load_weights(recorded[0])[0]['conv.weight'].dtype == torch.half
    # Another session, an empty work directory: the same tensors, nothing trained.
    restored, meta = load_weights(variants.ensure_teacher(str(tmp_path / 'session2'),
                                                          records_dir))
    assert len(trained) == 1 and meta['iter'] == 9000
    assert all(torch.equal(restored[k], here[k]) and restored[k].dtype == here[k].dtype
               for k in here)
    session2 = osp.dirname(variants.teacher_checkpoint(str(tmp_path / 'session2')))
    assert runs.evaluate_on_test(session2, TEACHER_CFG) == {'coco/bbox_mAP': 0.5}  # recorded
    # Without records, or with weights but not their results, it trains.
    variants.ensure_teacher(str(tmp_path / 'session3'))
    os.remove(recorded[0][:-len('.pth')] + '.json')
    variants.ensure_teacher(str(tmp_path / 'session4'), records_dir)
    assert len(trained) == 3


def test_weights_float16_cannot_hold_are_refused_by_name(tmp_path):
    lean = str(tmp_path / 'lean.pth')
    torch.save(dict(state_dict={'bn.running_var': torch.tensor([1.0, 7e4])}, meta={}), lean)
    with pytest.raises(ValueError, match="bn.running_var exceed torch.float16's range"):
        records.save_weights_record(lean, str(tmp_path / 'teacher_k'), str(tmp_path / 'rec'))
