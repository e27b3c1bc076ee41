"""GPU smoke kit: check ktan-det's GPU paths in one command, with no download.

Trains the COCO-structured KTAN config (configs/ktan_faster_rcnn_r101_to_r18.py, R-101 teacher,
R-18 student) on synthetic images written in COCO's layout at COCO's image scale, from a random
teacher checkpoint shaped like the model zoo's, for a few dozen iterations: in float32, with
--amp, resumed once, with 2-GPU torchrun when there are 2 GPUs; then exports the student and runs
DetInferencer on it. A stage passes when it exits 0 with finite losses (and, for --amp, its loss
at the last iteration within 10% of float32's). Prints each stage's result, step time and peak
GPU memory, and the teacher's forward time in float32 and half precision; exits 1 if any stage
failed.

    python tools/gpu_smoke.py                  # on a machine with GPUs, about 10 minutes
    python tools/gpu_smoke.py --dry-run        # anywhere: data, configs and commands only
"""
import argparse
import math
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch
from mmdet.datasets import CocoDataset
from mmengine.config import Config

import ktan_det  # noqa: F401  (registers ktan_det's modules)
from ktan_det.datasets.stand_ins import write_coco_split
from ktan_det.models.teacher import teacher_model_cfg
from ktan_det.utils import repoint_data_root
from ktan_det.utils.scalars import scalar_logs
from ktan_det.utils.zoo_checkpoint import save_zoo_style_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'ktan_faster_rcnn_r101_to_r18.py')
TRAIN = osp.join(REPO, 'tools', 'train.py')
EXPORT = osp.join(REPO, 'tools', 'export_student.py')
BATCH = 2  # the COCO config's images per GPU
AMP_LOSS_TOLERANCE = 0.10


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'gpu_smoke'))
    parser.add_argument('--iters', type=int, default=40, help='iterations per training stage')
    parser.add_argument('--image-size', type=int, default=800,
                        help="side of the synthetic images (COCO's scale: 800)")
    parser.add_argument('--dry-run', action='store_true',
                        help='no GPU needed: write the data and the teacher, build the config '
                        'and the distiller, parse every command, run nothing')
    return parser.parse_args(argv)


def prepare(work_dir: str, iters: int, image_size: int, num_images: Optional[int] = None) -> str:
    """The data (``iters`` batches and 8 val images, or ``num_images`` of each), the random
    zoo-style teacher and the run config; returns the config's path."""
    cfg = Config.fromfile(CONFIG)
    data_root = osp.join(work_dir, 'data', 'coco')
    classes = CocoDataset.METAINFO['classes']
    if not osp.isdir(data_root):
        write_coco_split(data_root, 'annotations/instances_train2017.json', 'train2017/',
                         classes, num_images or iters * BATCH, image_size, split='train')
        write_coco_split(data_root, 'annotations/instances_val2017.json', 'val2017/',
                         classes, num_images or 8, image_size, split='val')
    teacher_ckpt = osp.join(work_dir, 'teacher_r101_zoo_style.pth')
    if not osp.isfile(teacher_ckpt):
        teacher_cfg, _ = teacher_model_cfg(cfg.model.teacher)
        save_zoo_style_checkpoint(teacher_cfg.to_dict(), classes, teacher_ckpt)
    repoint_data_root(cfg, data_root)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.student.backbone.init_cfg = None  # no torchvision download
    # One epoch of `iters` iterations; every part on within it.
    cfg.train_cfg.max_epochs = 1
    cfg.model.train_cfg.adv_start_iter = iters // 4
    for hook in cfg.custom_hooks:
        if hook.type == 'KTANLossWeightHook':
            hook.warmup_iters = dict(adv=iters // 4)
    cfg.param_scheduler.student[0].end = iters // 4  # the LR warm-up
    cfg.default_hooks.logger.interval = 5
    cfg.train_dataloader.batch_size = BATCH
    cfg.randomness = dict(seed=0)
    path = osp.join(work_dir, 'ktan_coco_smoke.py')
    cfg.dump(path)
    return path


def stage_commands(config: str, work_dir: str, gpus: int) -> Dict[str, List[str]]:
    """Each training stage's command line."""
    python = sys.executable
    commands = {
        'float32': [python, TRAIN, config, '--work-dir', osp.join(work_dir, 'float32')],
        'amp': [python, TRAIN, config, '--work-dir', osp.join(work_dir, 'amp'), '--amp'],
        # float32's finished run, continued for a second epoch.
        'resume': [python, TRAIN, config, '--work-dir', osp.join(work_dir, 'resume'),
                   '--resume', osp.join(work_dir, 'float32', 'epoch_1.pth'),
                   '--cfg-options', 'train_cfg.max_epochs=2'],
    }
    if gpus >= 2:
        commands['ddp-2gpu'] = [python, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                                TRAIN, config, '--work-dir', osp.join(work_dir, 'ddp'),
                                '--launcher', 'pytorch']
    return commands


def check_commands(commands: Dict[str, List[str]]) -> None:
    """Parse each command with the tool's own parser (what the dry run can check)."""
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import train as train_tool
    for command in commands.values():
        train_tool.parse_args(command[command.index(TRAIN) + 1:])
    import export_student
    export_student.parse_args(['in.pth', 'out'])


def run_stage(name: str, command: List[str], work_dir: str) -> dict:
    """Run one training stage; its result, step time, peak memory and last loss."""
    start = time.time()
    with open(osp.join(work_dir, f'{name}.log'), 'w') as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    rows = [r for r in scalar_logs(command[command.index('--work-dir') + 1]) if 'loss' in r]
    losses = [r['loss'] for r in rows]
    finite = bool(losses) and all(math.isfinite(v) for v in losses)
    return dict(stage=name, passed=code == 0 and finite, exit=code,
                note='' if finite else 'no or non-finite losses',
                step_time=_median([r['time'] for r in rows if 'time' in r][1:]),
                memory_mb=max([r.get('memory', 0) for r in rows], default=None),
                last_loss=losses[-1] if losses else None, minutes=(time.time() - start) / 60)


def export_and_infer(work_dir: str) -> dict:
    """Export float32's student and run MMDetection's DetInferencer on it."""
    from mmdet.apis import DetInferencer
    start = time.time()
    try:
        subprocess.check_call([sys.executable, EXPORT, osp.join(work_dir, 'float32', 'epoch_1.pth'),
                               osp.join(work_dir, 'export')],
                              cwd=REPO)
        inferencer = DetInferencer(model=osp.join(work_dir, 'export', 'student_config.py'),
                                   weights=osp.join(work_dir, 'export', 'student.pth'),
                                   device='cuda')
        image = sorted(os.listdir(osp.join(work_dir, 'data', 'coco', 'val2017')))[0]
        result = inferencer(osp.join(work_dir, 'data', 'coco', 'val2017', image))
        passed, note = bool(result['predictions']), ''
    except Exception as error:  # the table says what failed; the other stages still report
        passed, note = False, f'{type(error).__name__}: {error}'
    return dict(stage='export+infer', passed=passed, exit=0 if passed else 1, note=note,
                minutes=(time.time() - start) / 60)


def teacher_forward_times(config: str, image_size: int) -> Dict[str, float]:
    """Median seconds of the teacher's forward on one batch, in float32 and under autocast."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model).cuda()
    teacher = model.teacher
    inputs = torch.randn(BATCH, 3, image_size, image_size, device='cuda')
    times = {}
    for name, dtype in (('float32', None), ('half', torch.float16)):
        samples = []
        for i in range(8):
            torch.cuda.synchronize()
            start = time.time()
            with torch.no_grad(), torch.autocast('cuda', dtype=dtype or torch.float16,
                                                 enabled=dtype is not None):
                teacher.extract_feat(inputs)
            torch.cuda.synchronize()
            if i >= 3:
                samples.append(time.time() - start)
        times[name] = _median(samples)
    return times


def _median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def print_table(results: List[dict], teacher_times: Dict[str, float]) -> None:
    print('| stage | result | step (s) | peak GPU memory (MB) | last loss | wall (min) | note |')
    print('|---|---|---|---|---|---|---|')
    for r in results:
        cells = [r['stage'], 'pass' if r['passed'] else 'FAIL',
                 _fmt(r.get('step_time'), 3), _fmt(r.get('memory_mb'), 0),
                 _fmt(r.get('last_loss'), 4), _fmt(r.get('minutes'), 1), r.get('note', '')]
        print('| ' + ' | '.join(cells) + ' |')
    if teacher_times:
        print(f'teacher forward, one batch of {BATCH}: float32 {teacher_times["float32"]:.3f} s, '
              f'half {teacher_times["half"]:.3f} s')


def _fmt(value, digits: int) -> str:
    return '' if value is None else f'{value:.{digits}f}'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    gpus = torch.cuda.device_count()
    if not args.dry_run and gpus == 0:
        print('gpu_smoke: no GPU found (torch.cuda.device_count() == 0); use --dry-run to '
              'check the kit without one')
        return 2
    # A dry run draws a few images: that they generate is what it checks.
    config = prepare(args.work_dir, args.iters, args.image_size, 2 if args.dry_run else None)
    commands = stage_commands(config, args.work_dir, max(gpus, 2 if args.dry_run else 0))
    check_commands(commands)
    if args.dry_run:
        from mmdet.registry import MODELS
        from mmengine.registry import init_default_scope
        init_default_scope('mmdet')
        MODELS.build(Config.fromfile(config).model)  # loads the zoo-style teacher strictly
        print(f'gpu_smoke --dry-run: data, teacher and {config} ready; stages: '
              f'{", ".join(commands)}, export+infer')
        return 0
    results = []
    for name, command in commands.items():
        shutil.rmtree(command[command.index('--work-dir') + 1], ignore_errors=True)
        results.append(run_stage(name, command, args.work_dir))
    by_name = {r['stage']: r for r in results}
    fp32, amp = by_name['float32'].get('last_loss'), by_name['amp'].get('last_loss')
    if fp32 is not None and amp is not None and abs(amp - fp32) > AMP_LOSS_TOLERANCE * fp32:
        by_name['amp'].update(passed=False, note=f'last loss {amp:.4f} vs float32 {fp32:.4f}')
    results.append(export_and_infer(args.work_dir))
    print_table(results, teacher_forward_times(config, args.image_size))
    return 0 if all(r['passed'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
