"""Plot training curves of one or more runs from MMEngine's scalar logs
(WORK_DIR/<timestamp>/vis_data/scalars.json): detection losses, KTAN losses, the discriminator's
real/fake separation, learning rates and val mAP, runs overlaid."""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from ktan_det.utils.scalars import scalar_logs  # noqa: E402

# Panel title -> scalar keys it plots (keys a run lacks are skipped).
PANELS = {
    'detection losses': ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'),
    'KTAN losses': ('loss_imitation', 'loss_adv', 'loss_soft'),
    'TGN stage (teacher heads through T2S)': ('tgn_loss_cls', 'tgn_loss_bbox'),
    'discriminator': ('disc_acc', 'disc_loss'),
    'learning rate': ('lr', 'student.lr', 'discriminator.lr'),
    'val bbox mAP': ('coco/bbox_mAP', 'coco/bbox_mAP_50'),
}
LINE_STYLES = ('-', '--', ':', '-.')


def curves(work_dir: str) -> Dict[str, List[tuple]]:
    """``key -> [(iteration, value), ...]`` for every scalar logged in ``work_dir``."""
    series: Dict[str, List[tuple]] = {}
    for row in scalar_logs(work_dir):
        for key, value in row.items():
            if key not in ('step', 'iter', 'epoch') and isinstance(value, (int, float)):
                series.setdefault(key, []).append((row['step'], value))
    return series


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dirs', nargs='+', help='work directories of the runs')
    parser.add_argument('--labels', nargs='+', help='names of the runs (default: dir names)')
    parser.add_argument('--out', required=True, help='output PNG')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    labels = args.labels or [osp.basename(osp.normpath(d)) for d in args.work_dirs]
    if len(labels) != len(args.work_dirs):
        raise ValueError(f'{len(labels)} labels for {len(args.work_dirs)} work directories')
    runs = [curves(d) for d in args.work_dirs]
    for work_dir, run in zip(args.work_dirs, runs):
        if not run:
            raise FileNotFoundError(f'no scalar logs under {work_dir}/*/vis_data/scalars.json')
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for ax, (title, keys) in zip(axes.flat, PANELS.items()):
        for r, (label, run) in enumerate(zip(labels, runs)):
            for k, key in enumerate(k for k in keys if k in run):
                steps, values = zip(*run[key])
                ax.plot(steps, values, color=colors[r % len(colors)],
                        linestyle=LINE_STYLES[k % len(LINE_STYLES)], label=f'{label}: {key}',
                        marker='o' if key.startswith('coco/') else None, markersize=3)
        ax.set_title(title)
        ax.set_xlabel('iteration')
        if ax.lines:
            ax.legend(fontsize=7)
        if title == 'learning rate':
            ax.set_yscale('log')
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f'saved {args.out}')
    return args.out


if __name__ == '__main__':
    main()
