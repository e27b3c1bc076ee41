"""Distillation quality on the synthetic benchmark: train the teacher once, then every
(variant, seed) as its own cached run, and report COCO bbox mAP (mean and spread over seeds),
the share of the teacher-student gap closed, and whether each difference to the plain student
exceeds the seed spread. Interrupted? Run it again: finished runs are reused, a partial one
resumes. Writes docs/benchmarks/quality.md and quality.png."""
import argparse
import datetime
import os
import os.path as osp
import platform
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import List, Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import Config  # noqa: E402

from ktan_det.benchmarks.report import (quality_table, summarize,  # noqa: E402
                                        tuning_table)
from ktan_det.benchmarks.variants import (KTAN_EXPERIMENTS, STUDENT_CFG,  # noqa: E402
                                          TUNED_WEIGHT_SCALES, VARIANTS, ensure_teacher,
                                          run_variant)
from ktan_det.datasets import ensure_synthetic_dataset  # noqa: E402
from ktan_det.utils.runs import REPO_ROOT, final_metrics  # noqa: E402

QUICK_VARIANTS = ('plain', 'ktan', 'cwd')
TUNED = ('ktan', 'cwd', 'pkd')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help=f'variants {", ".join(QUICK_VARIANTS)} with 2 seeds')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS + tuple(KTAN_EXPERIMENTS),
                        help='variants to run (plain always runs: it is the baseline)')
    parser.add_argument('--seeds', nargs='+', type=int, help='seeds (default 0 1 2)')
    parser.add_argument('--tune', nargs='+', type=float, metavar='SCALE',
                        help=f'tuning instead: run {", ".join(TUNED)} at seed 0 with their '
                        'distillation weights multiplied by each SCALE')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once, sharing the CPU cores between them')
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'synthetic'),
                        help='cache of runs (shared with the demo)')
    parser.add_argument('--out-dir', default=osp.join(REPO_ROOT, 'docs', 'benchmarks'),
                        help='where the table and the chart go')
    parser.add_argument('--report', help='name of the table and chart files (default quality, '
                        'or quality_quick with --quick)')
    return parser.parse_args(argv)


def _chart(summary: dict, teacher: dict, path: str) -> None:
    names = list(summary)
    means = [summary[n]['bbox_mAP']['mean'] for n in names]
    stds = [summary[n]['bbox_mAP']['std'] for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names) + 2), 4.5))
    ax.bar(names, means, yerr=stds, capsize=4,
           color=['grey' if n == 'plain' else 'tab:blue' for n in names])
    ax.axhline(teacher['coco/bbox_mAP'], color='tab:red', linestyle='--', label='teacher')
    ax.tick_params(axis='x', labelrotation=20)  # experiment names are long
    plt.setp(ax.get_xticklabels(), ha='right')
    ax.set_ylabel('bbox mAP (mean ± std over seeds)')
    ax.set_title('synthetic benchmark\nstudent R-18 FPN-128, teacher R-50 FPN')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    variants = args.variants or (QUICK_VARIANTS if args.quick else VARIANTS)
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    data = Config.fromfile(STUDENT_CFG)
    ensure_synthetic_dataset(osp.join(REPO_ROOT, data.data_root), **data.synthetic)
    teacher_ckpt = ensure_teacher(args.work_dir)
    teacher = final_metrics(osp.dirname(teacher_ckpt))

    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None

    def run_all(jobs):
        """``{(variant, seed, scale): final metrics}`` of every job, ``jobs`` at a time."""
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_variant, job[0], job[1], teacher_ckpt, args.work_dir,
                                   job[2], threads): job for job in jobs}
            for future in as_completed(futures):
                if future.exception():  # say so now; the other runs go on
                    print(f'  {futures[future]} failed: {future.exception()}', flush=True)
        return {job: final_metrics(future.result()) for future, job in futures.items()}

    if args.tune:
        runs = run_all([(v, 0, scale) for v in TUNED for scale in args.tune])
        table = tuning_table({(v, scale): m for (v, _, scale), m in runs.items()},
                             TUNED_WEIGHT_SCALES)
        print(table)
        _write_table(osp.join(args.out_dir, 'tuning.md'), table)
        return runs

    variants = ['plain'] + [v for v in variants if v != 'plain']
    runs = run_all([(v, s, None) for v in variants for s in seeds])
    results = {v: [runs[(v, s, None)] for s in seeds] for v in variants}
    summary = summarize(results, teacher)
    table = quality_table(summary, teacher)
    print(table)
    name = args.report or ('quality_quick' if args.quick else 'quality')
    _write_table(osp.join(args.out_dir, f'{name}.md'), table)
    _chart(summary, teacher, osp.join(args.out_dir, f'{name}.png'))
    return summary


def _write_table(path: str, table: str) -> None:
    """``table`` under a line saying when, where and by which command it was measured."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'Measured {datetime.date.today()} on {platform.machine()}, '
                f'{os.cpu_count()} CPU cores, by `python {" ".join(sys.argv)}`.\n\n')
        f.write(table + '\n')


if __name__ == '__main__':
    main()
