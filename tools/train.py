"""Train a detector or a KTAN distiller: MMDetection's tools/train.py arguments, plus
--data-root, with ktan_det's modules registered."""
import argparse
from typing import List, Optional

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ktan_det  # noqa: F401  (registers ktan_det's modules)
from ktan_det.models.teacher import require_teacher_ckpt
from ktan_det.utils import add_common_args, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector or a KTAN distiller')
    parser.add_argument('config', help='config file')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU only; applied to every optimizer)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the actual batch size (config auto_scale_lr)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a path from the latest one in work_dir')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Runner:
    args = parse_args(argv)
    cfg = load_config(args)
    if cfg.model.get('type') == 'KTANDistiller':  # say so before building and initialising
        teacher = cfg.model.get('teacher')
        require_teacher_ckpt(cfg.model.get('teacher_ckpt'),
                             teacher if isinstance(teacher, str) else None)
    if args.amp:
        # KTANOptimWrapperConstructor turns this into AMP for each of its optimizers.
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
