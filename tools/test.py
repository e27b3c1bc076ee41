"""Evaluate a checkpoint: MMDetection's tools/test.py arguments, plus --data-root.

A KTAN distiller checkpoint is evaluated through its student alone: the teacher checkpoint is
not read (``model.teacher_ckpt`` is set to None), so neither the file nor the network is needed.
"""
import argparse
from typing import List, Optional

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import ktan_det  # noqa: F401  (registers ktan_det's modules)
from ktan_det.utils import add_common_args, load_config


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a detector or a KTAN student')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show the predictions')
    parser.add_argument('--show-dir', help='save images with predictions under work_dir/DIR')
    parser.add_argument('--wait-time', type=float, default=2, help='--show interval (s)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(args)
    if cfg.model.get('type') == 'KTANDistiller':
        cfg.model.teacher_ckpt = None
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        vis = cfg.default_hooks.visualization
        vis.draw = True
        vis.show = args.show
        vis.wait_time = args.wait_time
        if args.show_dir:
            vis.test_out_dir = args.show_dir
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out}: the output must be a .pkl or .pickle file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) \
            else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    metrics = runner.test()
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


if __name__ == '__main__':
    main()
