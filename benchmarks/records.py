"""Finished runs' results kept in the repository, for benchmarks made over several sessions.

The machines this benchmark runs on keep no cache from one session to the next, and its quality
table (a teacher and 15 student runs) is longer than a session. So each finished student run's
results are also written to ``docs/benchmarks/runs/<run name>.json``, to be committed; a later
session that computes the same run name takes the run from there instead of training it again.
The name ends with the run's key (config, code version, thread count:
:func:`benchmarks.variants.run_identity`), so a record is reused under exactly the cache's rule.
Records hold results, not weights, except the teacher's: every distilling run needs its weights,
and retraining it (about as long as a session) in each session would leave no time for the
students. Its weights are kept in float16 beside its record (``<run name>.pth``), and the
teacher that trains them is rounded the same way, so that a teacher trained in this session and
one restored from its record are the same tensors.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional

import torch

from ktan_det.utils.checkpoint import load_weights, save_lean_checkpoint

from .runs import REPO_ROOT, TEST_METRICS, TRAINED_FOR, final_metrics

RECORDS_DIR = osp.join(REPO_ROOT, 'docs', 'benchmarks', 'runs')
VAL_METRICS = 'val_metrics.json'


def record_path(run_dir: str, records_dir: str = RECORDS_DIR) -> str:
    return osp.join(records_dir, osp.basename(osp.normpath(run_dir)) + '.json')


def save_record(run_dir: str, records_dir: str = RECORDS_DIR) -> str:
    """Write the record of the finished run in ``run_dir`` (how it was made, its final val and
    test metrics, its training time) and return its path."""
    with open(osp.join(run_dir, 'run.json')) as f:
        run = json.load(f)
    with open(osp.join(run_dir, TEST_METRICS)) as f:
        test = json.load(f)
    record = dict(run=run, val=run_val_metrics(run_dir), test=test,
                  train_minutes=_train_minutes(run_dir))
    os.makedirs(records_dir, exist_ok=True)
    path = record_path(run_dir, records_dir)
    with open(path + '.partial', 'w') as f:
        json.dump(record, f, indent=2)
    os.replace(path + '.partial', path)
    return path


def restore_record(run_dir: str, records_dir: str = RECORDS_DIR) -> bool:
    """If ``run_dir``'s run has a record, write its results into ``run_dir`` (``run.json``, the
    test and val metrics, where :func:`~benchmarks.runs.evaluate_on_test` and
    :func:`run_val_metrics` read them) and return True."""
    path = record_path(run_dir, records_dir)
    if not osp.isfile(path):
        return False
    with open(path) as f:
        record = json.load(f)
    os.makedirs(run_dir, exist_ok=True)
    for name, content in (('run.json', record['run']), (TEST_METRICS, record['test']),
                          (VAL_METRICS, record['val'])):
        with open(osp.join(run_dir, name), 'w') as f:
            json.dump(content, f, indent=2)
    return True


def weights_record_path(run_dir: str, records_dir: str = RECORDS_DIR) -> str:
    return record_path(run_dir, records_dir)[:-len('.json')] + '.pth'


def _with_float_dtype(src: str, dst: str, dtype: torch.dtype,
                      round_trip: bool = False) -> str:
    """Copy lean checkpoint ``src`` to ``dst`` with its floating-point tensors in ``dtype``
    (``round_trip``: rounded to ``dtype``'s precision, kept in their own)."""
    state_dict, meta = load_weights(src)
    largest = torch.finfo(dtype).max
    too_large = [k for k, v in state_dict.items()
                 if v.is_floating_point() and v.numel() and v.abs().max() > largest]
    if too_large:
        raise ValueError(f'{src}: {", ".join(too_large)} exceed {dtype}\'s range ({largest}): '
                         'these weights cannot be recorded in it')
    converted = {k: (v.to(dtype).to(v.dtype) if round_trip else v.to(dtype))
                 if v.is_floating_point() else v for k, v in state_dict.items()}
    return save_lean_checkpoint(converted, meta, dst)


def round_to_half(lean: str) -> str:
    """Round the weights of lean checkpoint ``lean`` to float16 precision, in place (kept in
    float32): what a weights record restores."""
    return _with_float_dtype(lean, lean, torch.float16, round_trip=True)


def save_weights_record(lean: str, run_dir: str, records_dir: str = RECORDS_DIR) -> str:
    """Keep the weights of lean checkpoint ``lean`` (of the run in ``run_dir``) in float16
    beside the run's record."""
    return _with_float_dtype(lean, weights_record_path(run_dir, records_dir), torch.float16)


def restore_weights_record(run_dir: str, dst: str, records_dir: str = RECORDS_DIR) -> bool:
    """If the run in ``run_dir`` has both its record and recorded weights, restore the record
    (:func:`restore_record`), write the weights to ``dst`` in float32 (the dtype its model
    trains in) and return True."""
    path = weights_record_path(run_dir, records_dir)
    if not (osp.isfile(path) and osp.isfile(record_path(run_dir, records_dir))):
        return False
    restore_record(run_dir, records_dir)
    _with_float_dtype(path, dst, torch.float32)
    return True


def run_val_metrics(run_dir: str) -> Optional[Dict[str, float]]:
    """The final val metrics of a run: logged, or restored from its record."""
    restored = osp.join(run_dir, VAL_METRICS)
    if osp.isfile(restored):
        with open(restored) as f:
            return json.load(f)
    return final_metrics(run_dir)


def _train_minutes(run_dir: str) -> Optional[float]:
    """Wall minutes of training that ``train.log`` reports (the sum over resumed parts)."""
    log = osp.join(run_dir, 'train.log')
    if not osp.isfile(log):
        return None
    with open(log) as f:
        parts = [float(line[len(TRAINED_FOR):].split()[0]) for line in f
                 if line.startswith(TRAINED_FOR)]
    return round(sum(parts), 1) if parts else None
