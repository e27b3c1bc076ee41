"""Read checkpoints' weights; write lean checkpoints: weights and plain metadata only, loadable
under safe loading."""
import os
import os.path as osp
from typing import Tuple

import torch
from mmengine.runner.checkpoint import _load_checkpoint

# Metadata kept in a lean checkpoint: plain types only (no message hub, no numpy).
PLAIN_META_KEYS = ('dataset_meta', 'experiment_name', 'mmengine_version', 'iter', 'epoch',
                   'seed', 'time')


def plain(value):
    """Lists, dicts, strings and numbers only (tuples become lists, numpy scalars numbers)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, 'item'):
        return value.item()
    return value


def save_lean_checkpoint(state_dict: dict, meta: dict, dst: str) -> str:
    """Save ``dict(meta=plain(meta), state_dict=...)`` to ``dst``.

    The file is written next to ``dst`` and renamed into place, so an interrupted save never
    leaves a truncated checkpoint behind (or replaces a good one with it).
    """
    if any(not torch.isfinite(v).all() for v in state_dict.values()
           if torch.is_tensor(v) and v.is_floating_point()):
        raise ValueError(f'refusing to write {dst}: the weights hold NaN or inf values')
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = f'{dst}.tmp-{os.getpid()}'
    torch.save(dict(meta=plain(meta), state_dict=state_dict), tmp)
    os.replace(tmp, dst)
    return dst


def load_weights(path: str) -> Tuple[dict, dict]:
    """The state dict and metadata of checkpoint ``path`` (MMEngine's, or a bare state dict),
    on the CPU."""
    checkpoint = _load_checkpoint(path, map_location='cpu')
    return checkpoint.get('state_dict', checkpoint), checkpoint.get('meta') or {}


def weights_under(state_dict: dict, prefix: str) -> dict:
    """The weights whose keys start with ``prefix`` (e.g. ``'student.'``), without it."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def save_weights(src: str, dst: str) -> str:
    """Save the weights of MMEngine checkpoint ``src`` to ``dst`` with its plain metadata and
    nothing else."""
    state_dict, meta = load_weights(src)
    return save_lean_checkpoint(state_dict,
                                {k: meta[k] for k in PLAIN_META_KEYS if k in meta}, dst)
