"""The embedded demo: synthetic data, a teacher, a plain student and a KTAN student, then a
table of their bbox mAP on the synthetic val split.

Every stage is cached in its work directory (re-running skips finished stages and resumes an
interrupted one). The teacher ends up at a stable path, the default teacher of the synthetic
KTAN config.
"""
import argparse
import os.path as osp
import time
from typing import Dict, List, Optional

from mmengine.config import Config

from ktan_det.datasets import ensure_synthetic_dataset
from ktan_det.utils.checkpoint import save_weights
from ktan_det.utils.runs import REPO_ROOT, final_metrics, train

SYNTHETIC = osp.join(REPO_ROOT, 'configs', 'synthetic')
TEACHER_CFG = osp.join(SYNTHETIC, 'faster-rcnn_r50_fpn_teacher_synthetic.py')
STUDENT_CFG = osp.join(SYNTHETIC, 'faster-rcnn_r18_fpn_student_synthetic.py')
KTAN_CFG = osp.join(SYNTHETIC, 'ktan_faster-rcnn_r50-to-r18_synthetic.py')
METRICS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')


def mAP_table(rows: Dict[str, Optional[Dict[str, float]]]) -> str:
    """A Markdown table of COCO bbox metrics, one row per model."""
    lines = ['| model | ' + ' | '.join(m.replace('bbox_', '') for m in METRICS) + ' |',
             '|---' * (len(METRICS) + 1) + '|']
    for name, metrics in rows.items():
        cells = [f'{metrics[f"coco/{m}"]:.3f}' if metrics else 'n/a' for m in METRICS]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO_ROOT, 'work_dirs'),
                        help='parent of the runs\' work directories')
    parser.add_argument('--seed', type=int, default=0, help='seed of the student runs')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    start = time.time()
    data = Config.fromfile(STUDENT_CFG)
    print(f'[1/5] synthetic data set in {data.data_root}')
    ensure_synthetic_dataset(osp.join(REPO_ROOT, data.data_root), **data.synthetic)

    print('[2/5] teacher: Faster R-CNN R-50 FPN from scratch')
    teacher_dir = osp.join(args.work_dir, 'synthetic_teacher')
    teacher_ckpt = Config.fromfile(KTAN_CFG).model.teacher_ckpt
    if not osp.isfile(osp.join(REPO_ROOT, teacher_ckpt)):
        final = train(TEACHER_CFG, teacher_dir, 'teacher')
        save_weights(final, osp.join(REPO_ROOT, teacher_ckpt))
    print(f'  teacher: weights at {teacher_ckpt}')

    seed = [f'randomness.seed={args.seed}']
    print('[3/5] plain student: Faster R-CNN R-18 FPN-128 from scratch')
    student_dir = osp.join(args.work_dir, f'synthetic_student_seed{args.seed}')
    train(STUDENT_CFG, student_dir, 'plain student', seed)

    print('[4/5] KTAN student: the same student, distilled from the teacher')
    ktan_dir = osp.join(args.work_dir, f'synthetic_ktan_seed{args.seed}')
    train(KTAN_CFG, ktan_dir, 'KTAN student', seed)

    print(f'[5/5] bbox mAP on the synthetic val split (total {(time.time() - start) / 60:.0f} min)')
    table = mAP_table({'teacher R-50': final_metrics(teacher_dir),
                       'plain student R-18': final_metrics(student_dir),
                       'KTAN student R-18': final_metrics(ktan_dir)})
    print(table)
    out = osp.join(args.work_dir, 'demo_results.md')
    with open(out, 'w') as f:
        f.write(table + '\n')
    print(f'table saved to {out}; logs and checkpoints under {args.work_dir}')
    return table


if __name__ == '__main__':
    main()
