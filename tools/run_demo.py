"""The embedded demo: synthetic data, a teacher, a plain student and a KTAN student (the two
trained side by side), a table of their bbox mAP on the synthetic test split, and pictures of
the runs.

Runs are cached under WORK_DIR/synthetic (shared with tools/benchmark_quality.py): re-running
skips finished stages and resumes an interrupted one. The teacher is the one the benchmarks
trained and recorded in docs/benchmarks/runs/ (its weights and test metrics), unless
--train-teacher trains it here. Its weights are also copied to the stable path the synthetic
KTAN config uses by default.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from mmengine.config import Config

# benchmarks/ is not installed: import it from this checkout.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from benchmarks.records import RECORDS_DIR  # noqa: E402
from benchmarks.report import mAP_table  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    REPO_ROOT,
    config_max_iters,
    evaluate_on_test,
    final_checkpoint,
)
from benchmarks.variants import (  # noqa: E402
    KTAN_CFG,
    STUDENT_CFG,
    TEACHER_CFG,
    ensure_teacher,
    run_variant,
    test_metrics,
)
from ktan_det.datasets import ensure_synthetic_dataset  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs'),
                        help='parent of the runs\' work directories')
    parser.add_argument('--seed', type=int, default=0, help='seed of the student runs')
    parser.add_argument('--train-teacher', action='store_true',
                        help='train the teacher here (9,000 iterations on every core) instead '
                        'of taking the one recorded in docs/benchmarks/runs/')
    return parser.parse_args(argv)


def _pictures(plain_dir: str, ktan_dir: str, teacher_ckpt: str, data_root: str,
              out_dir: str) -> List[str]:
    from plot_curves import main as plot_curves
    from vis_features import main as vis_features
    os.makedirs(out_dir, exist_ok=True)
    curves = plot_curves([plain_dir, ktan_dir, '--labels', 'plain', 'KTAN',
                          '--out', osp.join(out_dir, 'curves.png')])
    image = osp.join(data_root, 'val', '000000.png')
    maps = vis_features([KTAN_CFG, final_checkpoint(ktan_dir, config_max_iters(KTAN_CFG)),
                         image, '--out', osp.join(out_dir, 'feature_maps.png'),
                         '--compare', final_checkpoint(plain_dir, config_max_iters(STUDENT_CFG)),
                         '--labels', 'KTAN student', 'plain student',
                         '--cfg-options', f'model.teacher_ckpt={teacher_ckpt}'])
    return [curves, maps]


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    start = time.time()
    runs_root = osp.join(args.work_dir, 'synthetic')
    data = Config.fromfile(STUDENT_CFG)
    data_root = osp.join(REPO_ROOT, data.data_root)
    print(f'[1/6] synthetic data set in {data_root}')
    ensure_synthetic_dataset(data_root, **data.synthetic)

    records = None if args.train_teacher else RECORDS_DIR
    print('[2/6] teacher: Faster R-CNN R-50 FPN, from scratch, on every CPU core'
          + ('' if args.train_teacher else ' (its recorded weights, if there are some)'))
    teacher_ckpt = ensure_teacher(runs_root, records)
    teacher_dir = osp.dirname(teacher_ckpt)
    stable = osp.join(REPO_ROOT, Config.fromfile(KTAN_CFG).model.teacher_ckpt)
    os.makedirs(osp.dirname(stable), exist_ok=True)
    shutil.copyfile(teacher_ckpt, stable)
    print(f'  teacher: weights at {stable} (the synthetic KTAN config\'s default teacher)')

    print('[3/6] plain and KTAN students side by side (Faster R-CNN R-18 with a 128-channel FPN, '
          'from scratch; the KTAN one distilled from the teacher)')
    with ThreadPoolExecutor(2) as pool:
        plain, ktan = (pool.submit(run_variant, variant, args.seed, teacher_ckpt, runs_root,
                                   threads=1) for variant in ('plain', 'ktan'))
        plain_dir, ktan_dir = plain.result(), ktan.result()

    print('[4/6] evaluating on the test split')
    metrics = {'teacher R-50': evaluate_on_test(teacher_dir, TEACHER_CFG,
                                                checkpoint=teacher_ckpt),
               'plain student R-18': test_metrics(plain_dir),
               'KTAN student R-18': test_metrics(ktan_dir)}
    print('[5/6] pictures')
    pictures = _pictures(plain_dir, ktan_dir, teacher_ckpt, data_root,
                         osp.join(args.work_dir, 'demo_pictures'))
    minutes = (time.time() - start) / 60
    print(f'[6/6] bbox mAP on the synthetic test split ({minutes:.0f} min in all)')
    table = mAP_table(metrics)
    print(table)
    out = osp.join(args.work_dir, 'demo_results.md')
    os.makedirs(args.work_dir, exist_ok=True)
    with open(out, 'w') as f:
        f.write(table + '\n')
    print(f'table: {out}\npictures: {", ".join(pictures)}\nruns: {runs_root}')
    return table


if __name__ == '__main__':
    main()
