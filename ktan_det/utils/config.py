"""Config handling shared by the tools: loading, overrides, moving the data root."""
import argparse
import os
import os.path as osp
from typing import Iterator, List

from mmengine.config import Config, ConfigDict, DictAction

DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATOR_KEYS = ('val_evaluator', 'test_evaluator')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The arguments MMDetection's train and test tools share, plus ``--data-root``."""
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--data-root',
        help='use the data set in this directory: repoints every dataset and evaluator of the '
        'config together (datasets read ann_file relative to it; evaluators read '
        'DIR/<same relative ann_file>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs merged into the config, '
        'e.g. train_cfg.max_iters=100 model.teacher_ckpt=teacher.pth')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` and apply the common arguments, in MMDetection's order."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root is not None:
        repoint_data_root(cfg, args.data_root)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def _datasets(node) -> Iterator[dict]:
    """Every dataset config under ``node``, wrapped ones (RepeatDataset, ConcatDataset) too."""
    if isinstance(node, dict):
        if 'data_root' in node:
            yield node
        for value in node.values():
            yield from _datasets(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _datasets(value)


def _evaluators(cfg: Config) -> List[dict]:
    found = []
    for key in EVALUATOR_KEYS:
        value = cfg.get(key)
        found.extend(value if isinstance(value, (list, tuple)) else [value] if value else [])
    return found


def repoint_data_root(cfg: Config, data_root: str) -> None:
    """Point every dataset and evaluator of ``cfg`` at ``data_root``, in place.

    Datasets get ``data_root`` (their ``ann_file`` and ``data_prefix`` stay relative to it).
    An evaluator's ``ann_file`` that lies under one of the old data roots is moved to the same
    relative path under ``data_root``; one that does not is an error, since it could not follow.
    """
    data_root = data_root.rstrip('/') + '/'
    old_roots = set()
    for key in DATALOADER_KEYS:
        for dataset in _datasets(cfg.get(key)):
            old_roots.add(dataset['data_root'])
            dataset['data_root'] = data_root
    for evaluator in _evaluators(cfg):
        ann_file = evaluator.get('ann_file') if isinstance(evaluator, (dict, ConfigDict)) else None
        if ann_file is None:
            continue
        root = next((r for r in sorted(old_roots, key=len, reverse=True)
                     if r and osp.normpath(ann_file).startswith(osp.normpath(r) + os.sep)), None)
        if root is None:
            raise ValueError(
                f'--data-root: evaluator ann_file {ann_file} is not under any dataset data_root '
                f'({sorted(old_roots)}), so it cannot follow; set it with --cfg-options '
                'val_evaluator.ann_file=... test_evaluator.ann_file=...')
        evaluator['ann_file'] = data_root + osp.relpath(ann_file, root)
