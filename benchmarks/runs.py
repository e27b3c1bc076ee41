"""Run training jobs as the demo and the benchmarks do: one subprocess per run, logged to a
file, with compact progress on the console, resumable, and read back from MMEngine's logs."""
import argparse
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import threading
import time
from typing import Dict, Optional, Sequence

from mmengine.config import Config, DictAction

from ktan_det.utils.scalars import scalar_logs

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN_TOOL = osp.join(REPO_ROOT, 'tools', 'train.py')
TEST_TOOL = osp.join(REPO_ROOT, 'tools', 'test.py')
TEST_METRICS = 'test_metrics.json'
TRAINED_FOR = 'ktan-det benchmarks: trained for '
_TRAIN_LINE = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?eta: (\S+).*?\bloss: ([\d.]+)')
_VAL_LINE = re.compile(r'Iter\(val\).*coco/bbox_mAP: ([\d.-]+)')
# MMEngine's config parser (its `mmdet::` base lookup through pkg_resources) is not thread-safe,
# and the benchmarks prepare runs from several threads.
_CONFIG_LOCK = threading.Lock()


def final_checkpoint(work_dir: str, max_iters: int) -> str:
    return osp.join(work_dir, f'iter_{max_iters}.pth')


def is_finished(work_dir: str, max_iters: int) -> bool:
    return osp.isfile(final_checkpoint(work_dir, max_iters))


def read_config(config: str, cfg_options: Sequence[str] = ()) -> Config:
    """``config`` after ``key=value`` overrides, parsed as ``tools/train.py --cfg-options``
    parses them (numbers, ``None``, lists), without importing its custom modules; safe to call
    from several threads."""
    with _CONFIG_LOCK:
        cfg = Config.fromfile(config, import_custom_modules=False)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *cfg_options]).cfg_options)
    return cfg


def config_max_iters(config: str, cfg_options: Sequence[str] = ()) -> int:
    """``train_cfg.max_iters`` of ``config`` after ``key=value`` overrides."""
    return int(read_config(config, cfg_options).train_cfg.max_iters)


def train(config: str, work_dir: str, name: str, cfg_options: Sequence[str] = (),
          reports: int = 10, env: Optional[dict] = None,
          checkpoint_interval: Optional[int] = None) -> str:
    """Train ``config`` into ``work_dir`` (its own schedule), unless that is already done.

    An unfinished run in ``work_dir`` is resumed. The full log goes to ``work_dir/train.log``;
    the console gets about ``reports`` progress lines and every validation result. ``env``
    replaces the subprocess's environment. ``checkpoint_interval`` overrides how often the run
    saves a checkpoint to resume from; saving does not change what is trained, so callers can
    leave it out of what names a run.

    Returns:
        The final checkpoint.
    """
    max_iters = config_max_iters(config, cfg_options)
    if is_finished(work_dir, max_iters):
        print(f'  {name}: already trained ({final_checkpoint(work_dir, max_iters)})')
        return final_checkpoint(work_dir, max_iters)
    if not osp.isfile(TRAIN_TOOL):
        raise FileNotFoundError(f'{TRAIN_TOOL} not found: run from a ktan-det source checkout')
    os.makedirs(work_dir, exist_ok=True)
    command = [sys.executable, TRAIN_TOOL, config, '--work-dir', work_dir]
    if checkpoint_interval:
        # The config's max_keep_ckpts (2) stays: MMEngine deletes the oldest checkpoint before
        # writing the next, so with 1 a run killed while saving would have none to resume from.
        cfg_options = [*cfg_options, f'default_hooks.checkpoint.interval={checkpoint_interval}']
    if cfg_options:
        command += ['--cfg-options', *cfg_options]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        command.append('--resume')
        print(f'  {name}: resuming the unfinished run in {work_dir}')
    log_path = osp.join(work_dir, 'train.log')
    start, every = time.time(), max(1, max_iters // reports)
    with open(log_path, 'a', buffering=1) as log:  # line-buffered: follow it with tail -f
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, cwd=REPO_ROOT, env=env)
        for line in process.stdout:
            log.write(line)
            _report(line, name, every, start)
        if process.wait() != 0:
            log.flush()
            with open(log_path) as f:
                tail = ''.join(f.readlines()[-25:])
            raise RuntimeError(f'{name}: training failed (exit {process.returncode}); '
                               f'full log: {log_path}\n{tail}')
        minutes = (time.time() - start) / 60
        log.write(f'{TRAINED_FOR}{minutes:.2f} min\n')  # what records add up
    print(f'  {name}: done in {minutes:.1f} min')
    return final_checkpoint(work_dir, max_iters)


def _report(line: str, name: str, every: int, start: float) -> None:
    match = _TRAIN_LINE.search(line)
    if match and int(match.group(1)) % every == 0:
        done, total, eta, loss = match.groups()
        print(f'  {name}: iter {done}/{total}  loss {float(loss):.3f}  '
              f'elapsed {(time.time() - start) / 60:.1f} min  eta {eta}', flush=True)
    match = _VAL_LINE.search(line)
    if match:
        print(f'  {name}: val bbox mAP {float(match.group(1)):.3f}', flush=True)


def evaluate_on_test(work_dir: str, config: str, cfg_options: Sequence[str] = (),
                     env: Optional[dict] = None,
                     checkpoint: Optional[str] = None) -> Dict[str, float]:
    """The ``coco/...`` metrics of ``checkpoint`` (default: the final checkpoint in
    ``work_dir``) on the config's test split, by tools/test.py; computed once, then read from
    ``work_dir/test_metrics.json``."""
    cached = osp.join(work_dir, TEST_METRICS)
    if osp.isfile(cached):
        with open(cached) as f:
            return json.load(f)
    checkpoint = checkpoint or final_checkpoint(work_dir, config_max_iters(config, cfg_options))
    test_dir = osp.join(work_dir, 'test')
    command = [sys.executable, TEST_TOOL, config, checkpoint, '--work-dir', test_dir]
    if cfg_options:
        command += ['--cfg-options', *cfg_options]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    with open(osp.join(work_dir, 'test.log'), 'w') as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f'testing {checkpoint} failed (exit {result.returncode}); log: '
                           f'{osp.join(work_dir, "test.log")}')
    # MMEngine's LoggerHook writes the test metrics to <log_dir>/<timestamp>.json.
    logs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))
    with open(logs[-1]) as f:
        metrics = {k: v for k, v in json.load(f).items() if k.startswith('coco/')}
    with open(cached + '.partial', 'w') as f:
        json.dump(metrics, f, indent=2)
    os.replace(cached + '.partial', cached)
    return metrics


def final_metrics(work_dir: str) -> Optional[Dict[str, float]]:
    """The last validation metrics logged in ``work_dir`` (``coco/...`` keys), or None."""
    for row in reversed(scalar_logs(work_dir)):
        if 'coco/bbox_mAP' in row:
            return {k: v for k, v in row.items() if k.startswith('coco/')}
    return None
