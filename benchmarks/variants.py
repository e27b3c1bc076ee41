"""The distillation variants the benchmarks compare, as configs runnable by tools/train.py.

Every variant trains the same student (configs/synthetic student, same data, schedule and
optimizer) from the same teacher; they differ only in what is distilled:

- ``plain``: no distillation;
- ``imitation``, ``soft``, ``adv``: one KTAN component alone (``imitation`` is FitNets-style MSE
  through the T2S layer);
- ``ktan``: full KTAN;
- ``cwd``, ``pkd``: MMRazor 1.0.0's ``FpnTeacherDistill`` with ``ChannelWiseDivergence`` or
  ``PKDLoss`` on the same FPN levels (a 1x1 conv connector maps the 128-channel student maps to
  the teacher's 256, MMRazor's way for unequal widths).

Besides: ``plain-1.5x``, the plain student trained 1.5 times as long (its whole schedule
stretched), which shows whether the students' schedule leaves them near their plateau.
"""
import datetime
import hashlib
import json
import os
import os.path as osp
import threading
from typing import Callable, Dict, List, Optional, Tuple

from mmengine.config import Config

from ktan_det.utils.checkpoint import save_weights

from .code_version import code_version
from .records import (
    restore_record,
    restore_weights_record,
    round_to_half,
    save_record,
    save_weights_record,
)
from .runs import REPO_ROOT, evaluate_on_test, read_config, train

SYNTHETIC = osp.join(REPO_ROOT, 'configs', 'synthetic')
TEACHER_CFG = osp.join(SYNTHETIC, 'faster-rcnn_r50_fpn_teacher_synthetic.py')
STUDENT_CFG = osp.join(SYNTHETIC, 'faster-rcnn_r18_fpn_student_synthetic.py')
KTAN_CFG = osp.join(SYNTHETIC, 'ktan_faster-rcnn_r50-to-r18_synthetic.py')
BENCH_PACKAGES = osp.join(REPO_ROOT, 'build', 'bench-packages')

# Run options that turn one KTAN component off.
NO_IMITATION_OPTIONS = ['model.loss_imitation=None']
NO_SOFT_OPTIONS = ['model.loss_soft=None']
NO_ADV_OPTIONS = ['model.loss_adv=None', 'model.discriminator=None']
KTAN_VARIANTS = {
    'plain': None,
    'imitation': [*NO_SOFT_OPTIONS, *NO_ADV_OPTIONS],
    'soft': [*NO_IMITATION_OPTIONS, *NO_ADV_OPTIONS],
    'adv': [*NO_IMITATION_OPTIONS, *NO_SOFT_OPTIONS],
    'ktan': [],
}
# MMRazor's COCO weights, our starting point (see the quality benchmark for the tuning).
MMRAZOR_LOSSES = {
    'cwd': dict(type='ChannelWiseDivergence', tau=1.0, loss_weight=10.0),
    'pkd': dict(type='PKDLoss', loss_weight=6.0, resize_stu=True),
}
VARIANTS = tuple(KTAN_VARIANTS) + tuple(MMRAZOR_LOSSES)
# Changes to full KTAN, chosen with --variants outside the default comparison
# (docs/benchmarks.md#experiments).
KTAN_EXPERIMENTS = {
    # The synthetic config's settings before the experiments of 2026-11-26, one at a time:
    # a 100-iteration TGN stage (T2S trained, no distillation meanwhile) ...
    'ktan-tgn': ['model.train_cfg.tgn_iters=100'],
    # ... and imitation weight 1.
    'ktan-imitation-x1': ['model.loss_imitation.loss_weight=1.0'],
    # The discriminator's LR on the student's schedule instead of constant, so that it does not
    # outlearn a student whose LR has decayed (its own config: run options cannot set a list
    # of schedulers).
    'ktan-disc-student-lr': [],
    # At weight 0.1 the adversarial term's gradient on the student is a tenth of the imitation
    # term's (docs/benchmarks.md#experiments); ten times the weight makes them comparable ...
    'ktan-adv-x10': ['model.loss_adv.loss_weight=1.0'],
    # ... and the soft labels' gradient mostly repeats the detection loss's (cosine 0.7), which
    # a higher temperature, softening the teacher's distributions, may change.
    'ktan-soft-t4': ['model.loss_soft.temperature=4.0'],
    # Full KTAN without one of its distinctive parts: what each adds beyond the others.
    'ktan-no-adv': NO_ADV_OPTIONS,
    'ktan-no-soft': NO_SOFT_OPTIONS,
    # Discriminators that see something else than the raw maps (docs/guide.md#config-reference):
    # only the maps' local spatial correlation, ...
    'ktan-adv-affinity': ['model.discriminator.view=affinity'],
    # ... each map beside the input image it was computed from, ...
    'ktan-adv-conditional': ['model.discriminator.view=conditional'],
    # ... object regions mostly (patches overlapping a box weigh 4 times the others), ...
    'ktan-adv-objects': ['model.loss_adv.fg_weight=4.0'],
    # ... and the raw maps with a spectrally normalised discriminator (a stabiliser).
    'ktan-adv-sn': ['model.discriminator.spectral_norm=True'],
    # Soft labels where the teacher knows what the student does not: at its own 16 best
    # proposals of each image rather than at the student's RoIs, ...
    'ktan-soft-teacher-rois': ['model.train_cfg.soft_rois=teacher'],
    # ... and on the RPN's objectness at every anchor besides the RoIs.
    'ktan-soft-objectness': ['model.train_cfg.soft_objectness=1.0'],
}
EXPERIMENT_CONFIGS = {
    'ktan-disc-student-lr': osp.join(SYNTHETIC,
                                     'ktan_faster-rcnn_r50-to-r18_disc-student-lr_synthetic.py'),
}
KTAN_FAMILY = {**KTAN_VARIANTS, **KTAN_EXPERIMENTS}
# The plain student on a longer schedule (the regime check, docs/benchmarks.md).
LONGER_SCHEDULES = {'plain-1.5x': 1.5, 'plain-2.25x': 2.25}  # the first: the regime check's
# Variants that train without the teacher.
TEACHERLESS = ('plain', *LONGER_SCHEDULES)
# Multipliers of each method's distillation weights picked by the tuning runs
# (tools/benchmark_quality.py --tune; the same number of trials per method, docs/benchmarks.md).
TUNED_WEIGHT_SCALES = {'ktan': 1.0, 'cwd': 1.0, 'pkd': 0.3}
# Runs save this often, so a run cut off (e.g. by the end of a session) resumes close to where
# it stopped instead of from its last scheduled checkpoint or the start.
RESUME_INTERVAL = 100
_TEACHER_LOCK = threading.Lock()


def ktan_config(variant: str) -> str:
    """The config a KTAN variant's run options apply to."""
    return EXPERIMENT_CONFIGS.get(variant, KTAN_CFG)


def config_hash(config: str, options: List[str]) -> str:
    """A short hash of a config's full text after ``options``.

    The checkout's own path is left out (configs name their teacher config by absolute path),
    so another or a moved checkout finds the same cached runs."""
    text = read_config(config, options).pretty_text + '\n'.join(options)
    return hashlib.sha256(text.replace(REPO_ROOT, '<repo>').encode()).hexdigest()[:10]


def run_identity(config: str, options: List[str], threads: Optional[int]) -> dict:
    """What a run's result depends on, and its short key (which names its cached directory):
    the config after ``options``, the version of the project code it executes
    (:func:`~benchmarks.code_version.code_version`) and its CPU thread count (runs reproduce
    only at the same count)."""
    cfg = read_config(config, options)
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    identity = dict(config=config_hash(config, options),
                    code=code_version(cfg.pretty_text, imports),
                    threads=threads or os.cpu_count())
    identity['key'] = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[
        :10]
    return identity


def _record(run_dir: str, identity: dict, config: str, options: List[str], **about) -> None:
    """``run.json``: how the cached run in ``run_dir`` was made (``about``: variant, seed)."""
    os.makedirs(run_dir, exist_ok=True)
    path = osp.join(run_dir, 'run.json')
    if not osp.isfile(path):
        inside = osp.abspath(config).startswith(REPO_ROOT + os.sep)
        with open(path, 'w') as f:
            json.dump(dict(identity, **about, options=options,
                           config_file=osp.relpath(config, REPO_ROOT) if inside else config,
                           started=datetime.datetime.now().isoformat(timespec='seconds')),
                      f, indent=2)


def longer_schedule_options(config: str, factor: float) -> List[str]:
    """Run options that stretch ``config``'s schedule (iterations, LR steps, validation and
    checkpoints) by ``factor``."""
    cfg = read_config(config)
    max_iters = int(cfg.train_cfg.max_iters * factor)
    options = [f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={max_iters}',
               f'default_hooks.checkpoint.interval={max_iters}']
    for i, scheduler in enumerate(cfg.param_scheduler):
        for key in ('begin', 'end'):
            if key in scheduler:
                options.append(f'param_scheduler.{i}.{key}={int(scheduler[key] * factor)}')
    return options


def mmrazor_config(loss: dict, teacher_ckpt: str, num_levels: int = 5) -> Config:
    """The student config with its model replaced by MMRazor's FpnTeacherDistill."""
    student = read_config(STUDENT_CFG)
    teacher_model = read_config(TEACHER_CFG).model
    t_channels, s_channels = teacher_model.neck.out_channels, student.model.neck.out_channels
    levels = range(num_levels)
    cfg = student.to_dict()
    cfg['custom_imports'] = dict(
        imports=['ktan_det', 'benchmarks.mmrazor_compat', 'mmrazor.models'],
        allow_failed_imports=False)
    cfg['model'] = dict(
        _scope_='mmrazor',
        type='FpnTeacherDistill',
        architecture=dict(student.model.to_dict(), _scope_='mmdet'),
        teacher=dict(teacher_model.to_dict(), _scope_='mmdet'),
        teacher_ckpt=teacher_ckpt,
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
            teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
            connectors={f's_fpn{i}': dict(type='ConvModuleConnector', in_channel=s_channels,
                                           out_channel=t_channels, act_cfg=None)
                        for i in levels},
            distill_losses={f'loss_fpn{i}': dict(loss) for i in levels},
            loss_forward_mappings={
                f'loss_fpn{i}': dict(
                    preds_S=dict(from_student=True, recorder='fpn', data_idx=i,
                                 connector=f's_fpn{i}'),
                    preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
                for i in levels}))
    return Config(cfg)


def variant_config(variant: str, teacher_ckpt: str, out_dir: str,
                   weight_scale: float = 1.0) -> Tuple[str, List[str]]:
    """``(config file, cfg_options)`` that train ``variant`` with tools/train.py.

    Args:
        variant: One of :data:`VARIANTS` or :data:`KTAN_EXPERIMENTS`.
        teacher_ckpt: The teacher's checkpoint.
        out_dir: Where a generated config (MMRazor variants) is written.
        weight_scale: Multiplier of every distillation loss weight of the variant (tuning).
    """
    if variant in LONGER_SCHEDULES:
        return STUDENT_CFG, longer_schedule_options(STUDENT_CFG, LONGER_SCHEDULES[variant])
    if variant in KTAN_FAMILY:
        options = KTAN_FAMILY[variant]
        if options is None:
            return STUDENT_CFG, []
        options = [f'model.teacher_ckpt={teacher_ckpt}', *options]
        if weight_scale != 1.0:
            model = read_config(ktan_config(variant), options).model
            options += [f'model.{loss}.loss_weight={model[loss].loss_weight * weight_scale}'
                        for loss in ('loss_imitation', 'loss_adv', 'loss_soft') if model[loss]]
        return ktan_config(variant), options
    if variant not in MMRAZOR_LOSSES:
        raise KeyError(f'unknown variant {variant!r}; expected one of '
                       f'{VARIANTS + tuple(KTAN_EXPERIMENTS)}')
    loss = dict(MMRAZOR_LOSSES[variant])
    loss['loss_weight'] *= weight_scale
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'mmrazor_{variant}_x{weight_scale:g}.py')
    # Written aside and renamed: another thread may be reading the same config.
    partial = f'{path[:-3]}_{threading.get_ident()}.partial.py'
    mmrazor_config(loss, teacher_ckpt).dump(partial)
    os.replace(partial, path)
    return path, []


def _teacher_run(work_root: str) -> Tuple[dict, str]:
    """The teacher's identity (:func:`run_identity`, on every core) and its run directory."""
    identity = run_identity(TEACHER_CFG, [], None)
    return identity, osp.join(work_root, f'teacher_{identity["key"]}')


def teacher_checkpoint(work_root: str) -> str:
    """Where :func:`ensure_teacher` keeps the teacher's weights (``teacher.pth`` in its run
    directory, named by its identity, :func:`run_identity`), trained or not yet."""
    return osp.join(_teacher_run(work_root)[1], 'teacher.pth')


def ensure_teacher(work_root: str, records_dir: Optional[str] = None) -> str:
    """Train the synthetic teacher once, keep a lean copy of its final weights rounded to
    float16 precision (:func:`teacher_checkpoint`), evaluate that copy on the test split and
    return its path. With ``records_dir``, take the teacher from its record (weights and
    results) if there is one, and record it once trained (:mod:`benchmarks.records`). It
    trains on every core whatever the students do beside it, so that one teacher serves
    benchmarks run with any number of jobs. Safe to call from several threads: one trains,
    the others wait."""
    identity, run_dir = _teacher_run(work_root)
    lean = osp.join(run_dir, 'teacher.pth')
    with _TEACHER_LOCK:
        if osp.isfile(lean):
            return lean
        if records_dir and restore_weights_record(run_dir, lean, records_dir):
            print(f'  teacher: from its record in {records_dir}')
            return lean
        _record(run_dir, identity, TEACHER_CFG, [], variant='teacher')
        final = train(TEACHER_CFG, run_dir, 'teacher', env=_thread_env(None),
                      checkpoint_interval=RESUME_INTERVAL)
        round_to_half(save_weights(final, lean + '.partial'))
        os.replace(lean + '.partial', lean)
        # The weights the students learn from, recorded with their results at once: a
        # session may stop before the students are done.
        evaluate_on_test(run_dir, TEACHER_CFG, checkpoint=lean)
        if records_dir:
            save_weights_record(lean, run_dir, records_dir)
            save_record(run_dir, records_dir)
    return lean


def _thread_env(threads: Optional[int], env: Optional[dict] = None) -> dict:
    env = dict(os.environ if env is None else env)
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    return env


def run_variant(variant: str, seed: int, teacher_ckpt: str, work_root: str,
                weight_scale: Optional[float] = None, threads: Optional[int] = None,
                records_dir: Optional[str] = None,
                train_teacher: Optional[Callable[[], object]] = None) -> str:
    """Train one (variant, seed) run, cached in its own directory under ``work_root`` (named
    by the variant, the seed and the run's key, :func:`run_identity`); return the directory.
    ``weight_scale`` defaults to the method's tuned one (:data:`TUNED_WEIGHT_SCALES`);
    ``threads`` caps the run's CPU threads (for running several at once). With
    ``records_dir``, a run recorded there (:mod:`benchmarks.records`) is restored instead of
    trained. ``train_teacher`` is called before training a variant that distils, so that the
    teacher is trained only when a run needs it."""
    if weight_scale is None:  # the ablations and experiments use full KTAN's weights
        weight_scale = TUNED_WEIGHT_SCALES.get('ktan' if variant in KTAN_FAMILY else variant,
                                               1.0)
    config, options = variant_config(variant, teacher_ckpt, osp.join(work_root, 'configs'),
                                     weight_scale)
    options = [*options, f'randomness.seed={seed}']
    scale = '' if weight_scale == 1.0 else f'_x{weight_scale:g}'
    identity = run_identity(config, options, threads)
    run_dir = osp.join(work_root, f'{variant}{scale}_seed{seed}_{identity["key"]}')
    name = f'{variant}{scale} seed {seed}'
    if records_dir and restore_record(run_dir, records_dir):
        print(f'  {name}: from its record in {records_dir}')
        return run_dir
    if train_teacher is not None and variant not in TEACHERLESS:
        train_teacher()
    _record(run_dir, identity, config, options, variant=variant, seed=seed,
            weight_scale=weight_scale)
    env = _thread_env(threads, mmrazor_env() if variant in MMRAZOR_LOSSES else None)
    train(config, run_dir, name, options, env=env, checkpoint_interval=RESUME_INTERVAL)
    return run_dir


def test_metrics(run_dir: str) -> Dict[str, float]:
    """The test-split metrics of a cached run's final checkpoint (evaluated once, then read
    from the run directory), with the config, options and environment it was trained with."""
    with open(osp.join(run_dir, 'run.json')) as f:
        record = json.load(f)
    config = osp.join(REPO_ROOT, record['config_file'])
    env = mmrazor_env() if record['variant'] in MMRAZOR_LOSSES else None
    return evaluate_on_test(run_dir, config, record['options'], env=env)


def mmrazor_env() -> dict:
    """Environment for processes that import MMRazor: its packages on PYTHONPATH, and the
    repository root, for the configs' ``benchmarks.mmrazor_compat`` (not installed)."""
    if not osp.isdir(osp.join(BENCH_PACKAGES, 'mmrazor')):
        raise FileNotFoundError(
            f'MMRazor is not installed in {BENCH_PACKAGES}: run `make bench-env` first')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO_ROOT, BENCH_PACKAGES,
                                                      env.get('PYTHONPATH')]))
    return env
