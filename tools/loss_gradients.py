"""Which loss drives the student: for a KTAN checkpoint, the gradient each loss term puts on
the student's backbone and neck over a few training batches, as its norm, its ratio to the
detection loss's and its cosine with the detection and imitation gradients. A distillation
term whose gradient is small, or parallel to another's, can add little; use it to tune the
loss weights (docs/guide.md#which-loss-drives-the-student)."""
import argparse
import itertools
from typing import List, Optional

import numpy as np
from mmengine.config import DictAction
from mmengine.runner import Runner, set_random_seed

import ktan_det  # noqa: F401  (registration)
from ktan_det.analysis import loss_gradients, summarize_gradients
from ktan_det.visualization import load_run

COLUMNS = dict(norm='gradient norm', vs_detection='/ detection', cos_detection='cos detection',
               cos_imitation='cos imitation')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='KTAN config')
    parser.add_argument('checkpoint', help='KTAN checkpoint (student, T2S, discriminator)')
    parser.add_argument('--batches', type=int, default=8, help='training batches averaged')
    parser.add_argument('--seed', type=int, default=0, help='seed of the batches drawn')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, e.g. model.teacher_ckpt=PATH')
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f'--batches must be at least 1, got {args.batches}')
    return args


def table(summary: dict) -> str:
    """The summary as a Markdown table, mean ± std over batches."""
    lines = ['| loss term | ' + ' | '.join(COLUMNS.values()) + ' |',
             '|---' * (len(COLUMNS) + 1) + '|']
    for term, stats in summary.items():
        cells = [f'{np.mean(stats[key]):.3f} ± {np.std(stats[key]):.3f}' if key in stats
                 else '' for key in COLUMNS]
        lines.append(f'| {term} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    set_random_seed(args.seed)
    cfg, distiller = load_run(args.config, args.checkpoint, args.cfg_options)
    distiller.train()
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)  # a few batches: no workers
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    batches = itertools.islice(itertools.chain.from_iterable(itertools.repeat(loader)),
                               args.batches)  # past the data set's end: again from its start
    summary = summarize_gradients([loss_gradients(distiller, batch) for batch in batches])
    text = table(summary)
    print(text)
    return text


if __name__ == '__main__':
    main()
