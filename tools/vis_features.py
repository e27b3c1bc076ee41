"""Show what KTAN distils on one image: per tapped neck level, the input with the student's
detections, the teacher map, T2S(teacher), the student map, |T2S(teacher) - student| and the
discriminator's patch map. Maps are reduced over channels by the mean absolute activation
(the difference: mean over channels of the absolute difference of the maps as the imitation
loss compares them, i.e. after its normalisation). With --compare, a second
student (e.g. the plain one) is shown to the right, judged by the same discriminator."""
import argparse
import os
import os.path as osp
from typing import List, Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

import ktan_det  # noqa: E402,F401  (registration)
from ktan_det.visualization import feature_panels, image_batch, load_run, load_student  # noqa: E402

TITLES = dict(teacher='teacher', t2s='T2S(teacher)', student='student',
              difference='|T2S(teacher) - student|', discriminator='D: P(teacher)')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='KTAN config')
    parser.add_argument('checkpoint', help='KTAN checkpoint (student, T2S, discriminator)')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--compare', help='a second student checkpoint, shown side by side')
    parser.add_argument('--labels', nargs=2, default=('KTAN student', 'compared student'),
                        help='names of the two students')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detections shown')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, e.g. model.teacher_ckpt=PATH')
    return parser.parse_args(argv)


def _draw_detections(ax, image: np.ndarray, detector, batch, score_thr: float, title: str):
    with torch.no_grad():
        result = detector.predict(batch['inputs'], batch['data_samples'])[0]
    ax.imshow(image)
    keep = result.pred_instances.scores >= score_thr
    # Boxes come back in original-image pixels; the image shown is the network input.
    scale = np.array(result.metainfo.get('scale_factor', (1.0, 1.0)) * 2)
    for box in result.pred_instances.bboxes[keep].numpy() * scale:
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False,
                               color='lime', linewidth=1))
    ax.set_title(f'{title}: {int(keep.sum())} boxes', fontsize=8)


def _show_map(fig, ax, values: np.ndarray, title: str, probability: bool = False):
    image = ax.imshow(values, cmap='magma' if not probability else 'coolwarm',
                      vmin=0 if probability else None, vmax=1 if probability else None)
    ax.set_title(title, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)


def render(distiller, batch, students, panels, score_thr: float):
    """The figure: one row per tapped level; input with detections, teacher, T2S(teacher), then
    per student its map, the difference and the discriminator's verdict."""
    mean = distiller.data_preprocessor.mean.view(3, 1, 1)
    std = distiller.data_preprocessor.std.view(3, 1, 1)
    image = (batch['inputs'][0] * std + mean).clamp(0, 255).byte().permute(1, 2, 0).numpy()
    if not distiller.data_preprocessor._channel_conversion:
        image = image[..., ::-1]  # BGR inputs: show as RGB
    per_student = ['student', 'difference'] + (
        ['discriminator'] if 'discriminator' in panels[0][0] else [])
    columns = 3 + len(per_student) * len(students)
    levels = distiller.tap_levels
    fig, axes = plt.subplots(len(levels), columns, squeeze=False,
                             figsize=(2.6 * columns, 2.3 * len(levels)))
    for row, lvl in enumerate(levels):
        _draw_detections(axes[row, 0], image, distiller.student, batch, score_thr,
                         f'level {lvl}  {students[0][0]}')
        _show_map(fig, axes[row, 1], panels[0][row]['teacher'], TITLES['teacher'])
        _show_map(fig, axes[row, 2], panels[0][row]['t2s'], TITLES['t2s'])
        for s, (label, _) in enumerate(students):
            for c, key in enumerate(per_student):
                ax = axes[row, 3 + s * len(per_student) + c]
                _show_map(fig, ax, panels[s][row][key], f'{label}: {TITLES[key]}',
                          probability=key == 'discriminator')
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    cfg, distiller = load_run(args.config, args.checkpoint, args.cfg_options)
    batch = image_batch(cfg, args.image, distiller.data_preprocessor)
    students = [(args.labels[0], distiller.student)]
    if args.compare:
        students.append((args.labels[1], load_student(cfg, args.compare)))
    panels = [feature_panels(distiller, batch['inputs'], student) for _, student in students]
    fig = render(distiller, batch, students, panels, args.score_thr)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f'saved {args.out}')
    return args.out


if __name__ == '__main__':
    main()
