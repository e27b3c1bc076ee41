"""Distillation quality on the synthetic benchmark: train the teacher once, then every
(variant, seed) as its own cached run, and report COCO bbox mAP on the test split (mean and
spread over seeds; each run's final checkpoint, chosen before looking at either split), the
share of the teacher-student gap closed, and whether each difference to the plain student
exceeds the seed spread. Interrupted? Run it again: finished runs are reused, a partial one
resumes. Writes docs/benchmarks/quality.md, quality.png and quality.json. With --regime, checks
the regime instead (docs/benchmarks.md): the plain student at every seed and trained 1.5 times as
long at the first, against the teacher; writes regime.md, regime.png and regime.json."""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import Config  # noqa: E402

# benchmarks/ is not installed: import it from this checkout.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.records import (  # noqa: E402
    RECORDS_DIR,
    record_path,
    run_val_metrics,
    save_record,
)
from benchmarks.report import (  # noqa: E402
    quality_table,
    quick_prediction,
    quick_prediction_table,
    regime_checks,
    regime_table,
    summarize,
    tuning_table,
)
from benchmarks.runs import REPO_ROOT, config_max_iters, evaluate_on_test  # noqa: E402
from benchmarks.variants import (  # noqa: E402
    KTAN_EXPERIMENTS,
    LONGER_SCHEDULES,
    STUDENT_CFG,
    TEACHER_CFG,
    TUNED_WEIGHT_SCALES,
    VARIANTS,
    ensure_teacher,
    run_variant,
    teacher_checkpoint,
    test_metrics,
)
from ktan_det.datasets import ensure_synthetic_dataset  # noqa: E402

QUICK_VARIANTS = ('plain', 'ktan', 'pkd')
QUICK_SEEDS = (0, 1)
CHOICES = VARIANTS + tuple(KTAN_EXPERIMENTS) + tuple(LONGER_SCHEDULES)
TUNED = ('ktan', 'cwd', 'pkd')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help=f'variants {", ".join(QUICK_VARIANTS)} with 2 seeds')
    parser.add_argument('--variants', nargs='+', choices=CHOICES,
                        help='variants to run (plain always runs: it is the baseline)')
    parser.add_argument('--seeds', nargs='+', type=int, help='seeds (default 0 1 2)')
    parser.add_argument('--regime', action='store_true',
                        help='check the regime instead: plain at every seed, '
                        f'{next(iter(LONGER_SCHEDULES))} at the first, the teacher')
    parser.add_argument('--tune', nargs='+', type=float, metavar='SCALE',
                        help=f'tuning instead: run {", ".join(TUNED)} at seed 0 with their '
                        'distillation weights multiplied by each SCALE')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained at once, sharing the CPU cores between them')
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs', 'synthetic'),
                        help='cache of runs (shared with the demo)')
    parser.add_argument('--records-dir', default=RECORDS_DIR,
                        help='finished runs\' results kept in the repository, reused (same run '
                        'key) instead of training again, and the teacher\'s weights: a benchmark '
                        'can span sessions whose machines keep no cache; "" to use none')
    parser.add_argument('--out-dir', default=osp.join(REPO_ROOT, 'docs', 'benchmarks'),
                        help='where the table and the chart go')
    parser.add_argument('--report', help='name of the table and chart files (default quality, '
                        'quality_quick with --quick, regime with --regime)')
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
    ax.set_ylabel('bbox mAP on the test split\n(mean ± std over seeds)')
    ax.set_title('synthetic benchmark\nstudent R-18 FPN-128, teacher R-50 FPN')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    variants = args.variants or (QUICK_VARIANTS if args.quick else VARIANTS)
    seeds = args.seeds or (list(QUICK_SEEDS) if args.quick else [0, 1, 2])
    data = Config.fromfile(STUDENT_CFG)
    ensure_synthetic_dataset(osp.join(REPO_ROOT, data.data_root), **data.synthetic)
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    # Trained when the first run that needs it starts (beside runs that do not), or at the end
    # for its test metrics when every run that needs it is recorded.
    teacher_ckpt = teacher_checkpoint(args.work_dir)
    teacher_dir = osp.dirname(teacher_ckpt)

    def train_teacher():
        return ensure_teacher(args.work_dir, args.records_dir)

    def run_and_record(variant, seed, scale):
        """Train (or restore) a run and record it as soon as it is done, so that a session
        stopped in the middle of a benchmark keeps every finished run."""
        run_dir = run_variant(variant, seed, teacher_ckpt, args.work_dir, scale, threads,
                              args.records_dir, train_teacher)
        test_metrics(run_dir)
        _save_records([run_dir], args.records_dir)
        return run_dir

    def run_all(jobs):
        """``{(variant, seed, scale): run directory}`` of every job, ``args.jobs`` at a time,
        started in the order given."""
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(run_and_record, *job): job for job in jobs}
            for future in as_completed(futures):
                if future.exception():  # say so now; the other runs go on
                    print(f'  {futures[future]} failed: {future.exception()}', flush=True)
        return {job: future.result() for future, job in futures.items()}

    if args.tune:  # a choice: made on the val split
        # Evaluated on test and recorded too (a run of the main table may be one of these),
        # never looked at for the choice.
        runs = run_all([(v, 0, scale) for v in TUNED for scale in args.tune])
        table = tuning_table({(v, scale): run_val_metrics(run_dir)
                              for (v, _, scale), run_dir in runs.items()}, TUNED_WEIGHT_SCALES)
        print(table)
        _write_table(osp.join(args.out_dir, 'tuning.md'), table)
        return runs

    if args.regime:  # the plateau check needs one seed; the spread needs them all
        longer = next(iter(LONGER_SCHEDULES))
        jobs = [('plain', seeds[0]), (longer, seeds[0]), *(('plain', s) for s in seeds[1:])]
    else:
        variants = ['plain'] + [v for v in variants if v != 'plain']
        jobs = [(v, s) for v in variants for s in seeds]
    runs = run_all([(v, s, None) for v, s in jobs])
    seeds_of = {}
    for variant, seed in jobs:
        seeds_of.setdefault(variant, []).append(seed)
    teacher = evaluate_on_test(teacher_dir, TEACHER_CFG, checkpoint=train_teacher())
    results = {v: [test_metrics(runs[(v, s, None)]) for s in vs] for v, vs in seeds_of.items()}
    summary = summarize(results, teacher)
    table = quality_table(summary, teacher)
    checks = prediction = None
    if not (args.regime or args.quick):
        prediction = quick_prediction(results, seeds, teacher, QUICK_VARIANTS, QUICK_SEEDS)
        if prediction:
            table += ('\n\nWhat the quick mode (the same runs at seeds '
                      f'{", ".join(map(str, QUICK_SEEDS))}) predicted:\n\n'
                      + quick_prediction_table(prediction))
    if args.regime:  # a choice (the schedule): made on the val split
        val = {v: [run_val_metrics(runs[(v, s, None)]) for s in vs] for v, vs in seeds_of.items()}
        checks = regime_checks(val, run_val_metrics(teacher_dir), longer,
                               LONGER_SCHEDULES[longer])
        table += '\n\nThe regime, on the val split:\n\n' + regime_table(checks)
    print(table)
    name = args.report or ('regime' if args.regime else
                           'quality_quick' if args.quick else 'quality')
    _write_table(osp.join(args.out_dir, f'{name}.md'), table)
    _chart(summary, teacher, osp.join(args.out_dir, f'{name}.png'))
    _write_json(osp.join(args.out_dir, f'{name}.json'), seeds_of, runs, results, summary,
                teacher, teacher_dir, threads, checks, prediction)
    return summary


def _write_json(path: str, seeds_of: Dict[str, List[int]], runs: dict, results: dict,
                summary: dict, teacher: dict, teacher_dir: str, threads: Optional[int],
                checks: Optional[dict], prediction: Optional[dict]) -> None:
    """The results for machines: per variant and seed its test metrics and run, the
    teacher's, and how and when they were made."""
    with open(osp.join(teacher_dir, 'run.json')) as f:
        teacher_run = json.load(f)
    record = dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        command=f'python {" ".join(sys.argv)}', machine=platform.machine(),
        cpu_cores=os.cpu_count(), threads_per_run=threads or os.cpu_count(), split='test',
        teacher=dict(metrics=teacher, iters=config_max_iters(TEACHER_CFG),
                     code=teacher_run['code'], key=teacher_run['key']),
        student_iters=config_max_iters(STUDENT_CFG),
        variants={v: dict(seeds=seeds, metrics=results[v],
                          runs=[osp.basename(runs[(v, s, None)]) for s in seeds],
                          code=run_identity_of(runs[(v, seeds[0], None)])['code'],
                          summary=summary[v]) for v, seeds in seeds_of.items()})
    if checks is not None:
        record['regime'] = checks
    if prediction is not None:
        record['quick_prediction'] = prediction
    with open(path, 'w') as f:
        json.dump(record, f, indent=2)


def _save_records(run_dirs, records_dir: str) -> None:
    """Record each run not recorded yet (a record of the same name is the same run, and one
    restored from its record has no training log to record again)."""
    if records_dir:
        for run_dir in run_dirs:
            if not osp.isfile(record_path(run_dir, records_dir)):
                save_record(run_dir, records_dir)


def run_identity_of(run_dir: str) -> dict:
    with open(osp.join(run_dir, 'run.json')) as f:
        return json.load(f)


def _write_table(path: str, table: str) -> None:
    """``table`` under a line saying when, where and by which command it was measured."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(f'Measured {datetime.date.today()} on {platform.machine()}, '
                f'{os.cpu_count()} CPU cores, by `python {" ".join(sys.argv)}`.\n\n')
        f.write(table + '\n')


if __name__ == '__main__':
    main()
