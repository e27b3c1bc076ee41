"""Training-step time and peak memory of each distillation variant, as ratios to the plain
student, on the same teacher/student pair and batch; plus the student's deployment gain
(parameters, FLOPs, CPU latency) over the teacher. Step times come from one process that
alternates the variants (A B C ... A B C ...) so drift cancels; memory from a separate process
per variant (peak RSS increment over the imports; on a GPU, torch.cuda.max_memory_allocated).
Writes docs/benchmarks/speed.md and speed.png."""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from functools import partial
from typing import Dict, List, Optional

import torch
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

# benchmarks/ is not installed: import it from this checkout.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.records import RECORDS_DIR  # noqa: E402
from benchmarks.runs import REPO_ROOT  # noqa: E402
from benchmarks.speed import (  # noqa: E402
    SPEED_VARIANTS,
    build_step,
    fixed_batch,
    mmrazor_available,
)
from benchmarks.variants import STUDENT_CFG, TEACHER_CFG, ensure_teacher  # noqa: E402

TARGETS = ('KTAN beyond the floor <= 15% of the plain step',
           'KTAN step <= 1.10x MMRazor CWD step', 'KTAN peak memory increment <= 1.3x plain')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=15, help='timed rounds per variant')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps per variant')
    parser.add_argument('--memory-steps', type=int, default=4)
    parser.add_argument('--variants', nargs='+', choices=SPEED_VARIANTS,
                        help='default: all')
    parser.add_argument('--teacher-ckpt', help='default: the synthetic teacher (trained if '
                        'missing), so that proposal counts are realistic')
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'synthetic'))
    parser.add_argument('--out-dir', default=osp.join(REPO_ROOT, 'docs', 'benchmarks'))
    parser.add_argument('--memory-child', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process since the last :func:`_reset_peak_rss`."""
    try:
        with open('/proc/self/status') as f:
            return int(re.search(r'VmHWM:\s+(\d+) kB', f.read()).group(1)) / 1024
    except OSError:  # not Linux: the peak since the process started
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Start the peak over from the current memory (Linux), so that transient peaks of the
    imports do not hide the training steps' own."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def memory_child(variant: str, teacher_ckpt: str, batch_size: int, steps: int) -> None:
    """In its own process: peak memory of ``steps`` training steps, over the imports."""
    batch = fixed_batch(batch_size)
    _reset_peak_rss()
    baseline = _peak_rss_mb()
    step = build_step(variant, teacher_ckpt, batch)
    for _ in range(steps):
        step()
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    print(json.dumps(dict(rss_increment_mb=_peak_rss_mb() - baseline, gpu_mb=gpu)))


def time_steps(variants: List[str], teacher_ckpt: str, batch_size: int, rounds: int,
               warmup: int) -> Dict[str, float]:
    batch = fixed_batch(batch_size)
    steps = {v: build_step(v, teacher_ckpt, batch) for v in variants}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times = {v: [] for v in variants}
    for _ in range(rounds):
        for variant, step in steps.items():
            start = time.perf_counter()
            step()
            times[variant].append(time.perf_counter() - start)
    return {v: statistics.median(t) for v, t in times.items()}


def measure_memory(variants: List[str], args, teacher_ckpt: str) -> Dict[str, dict]:
    memory = {}
    for variant in variants:
        out = subprocess.run(
            [sys.executable, __file__, '--memory-child', variant, '--teacher-ckpt',
             teacher_ckpt, '--batch-size', str(args.batch_size), '--memory-steps',
             str(args.memory_steps)], capture_output=True, text=True, check=True,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        memory[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    return memory


def deployment(teacher_ckpt: str, repeats: int = 20) -> Dict[str, dict]:
    """Parameters, FLOPs (MMEngine's counter) and median CPU latency of one 160x160 image."""
    from mmdet.registry import MODELS
    from mmengine.analysis import get_model_complexity_info
    from mmengine.config import Config
    from mmengine.runner.checkpoint import load_checkpoint
    batch = fixed_batch(1)
    rows = {}
    for name, config in (('teacher R-50 FPN', TEACHER_CFG), ('student R-18 FPN-128',
                                                             STUDENT_CFG)):
        model = MODELS.build(Config.fromfile(config).model).eval()
        if name.startswith('teacher'):
            load_checkpoint(model, teacher_ckpt, map_location='cpu', logger='silent')
        data = model.data_preprocessor(batch, False)
        forward = model.forward
        model.forward = partial(forward, data_samples=data['data_samples'])
        flops = get_model_complexity_info(model, None, data['inputs'], show_table=False,
                                          show_arch=False)['flops']
        model.forward = forward
        latencies = []
        with torch.no_grad():
            for i in range(repeats + 3):
                start = time.perf_counter()
                model.predict(data['inputs'], data['data_samples'])
                if i >= 3:
                    latencies.append(time.perf_counter() - start)
        rows[name] = dict(params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                          gflops=flops / 1e9, latency_ms=1000 * statistics.median(latencies))
    return rows


def report(times, memory, deploy, args) -> str:
    plain_t, plain_m = times['plain'], memory['plain']['rss_increment_mb']
    lines = [f'Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} CPU '
             f'cores, torch {torch.__version__}, batch {args.batch_size} of 160x160 images, '
             f'median of {args.rounds} alternated steps, by '
             f'`python {" ".join(sys.argv)}`.', '',
             '| variant | step (s) | step / plain | peak memory increment (MB) | memory / plain '
             '| GPU peak (MB) |', '|---|---|---|---|---|---|']
    for variant, seconds in times.items():
        mem, gpu = memory[variant]['rss_increment_mb'], memory[variant]['gpu_mb']
        lines.append(f'| {variant} | {seconds:.3f} | {seconds / plain_t:.2f} | {mem:.0f} | '
                     f'{mem / plain_m:.2f} | {"-" if gpu is None else f"{gpu:.0f}"} |')
    checks = []
    if 'ktan' in times and 'floor' in times:
        own = (times['ktan'] - times['floor']) / plain_t
        checks.append((TARGETS[0], f'{100 * own:.0f}%', own <= 0.15))
    if 'ktan' in times and 'cwd' in times:
        ratio = times['ktan'] / times['cwd']
        checks.append((TARGETS[1], f'{ratio:.2f}x', ratio <= 1.10))
    if 'ktan' in memory:
        ratio = memory['ktan']['rss_increment_mb'] / plain_m
        checks.append((TARGETS[2], f'{ratio:.2f}x', ratio <= 1.3))
    lines += ['', '| target | measured | met |', '|---|---|---|']
    lines += [f'| {t} | {m} | {"yes" if ok else "no"} |' for t, m, ok in checks]
    lines += ['', '| model | parameters (M) | GFLOPs (1 image) | CPU latency (ms) |',
              '|---|---|---|---|']
    lines += [f'| {n} | {r["params_m"]:.1f} | {r["gflops"]:.2f} | {r["latency_ms"]:.0f} |'
              for n, r in deploy.items()]
    return '\n'.join(lines)


def _chart(times, memory, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(times)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    axes[0].bar(names, [times[n] / times['plain'] for n in names])
    axes[0].set_ylabel('step time / plain student')
    axes[1].bar(names, [memory[n]['rss_increment_mb'] / memory['plain']['rss_increment_mb']
                        for n in names], color='tab:orange')
    axes[1].set_ylabel('peak memory increment / plain student')
    for ax in axes:
        ax.axhline(1.0, color='grey', linewidth=0.8)
        ax.tick_params(axis='x', rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    init_default_scope('mmdet')  # datasets and models are built outside a runner
    # Quiet the weight-init reports and FLOP-counter notes of the dozen models built here.
    MMLogger.get_instance('benchmark_speed', log_level='ERROR')
    if args.memory_child:
        mmrazor_available()
        memory_child(args.memory_child, args.teacher_ckpt, args.batch_size, args.memory_steps)
        return ''
    teacher_ckpt = args.teacher_ckpt or ensure_teacher(args.work_dir, RECORDS_DIR)
    variants = list(args.variants or SPEED_VARIANTS)
    if not mmrazor_available():
        print('MMRazor not found (make bench-env): skipping the cwd and pkd variants')
        variants = [v for v in variants if v not in ('cwd', 'pkd')]
    if 'plain' not in variants:
        variants.insert(0, 'plain')
    times = time_steps(variants, teacher_ckpt, args.batch_size, args.rounds, args.warmup)
    memory = measure_memory(variants, args, teacher_ckpt)
    table = report(times, memory, deployment(teacher_ckpt), args)
    print(table)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'speed.md'), 'w') as f:
        f.write(table + '\n')
    _chart(times, memory, osp.join(args.out_dir, 'speed.png'))
    return table


if __name__ == '__main__':
    main()
