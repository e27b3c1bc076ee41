"""Write lean checkpoints: weights and plain metadata only, loadable under safe loading."""
import os
import os.path as osp
from typing import Optional

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


def save_weights(src: str, dst: str, prefix: Optional[str] = None,
                 meta: Optional[dict] = None) -> str:
    """Save the weights of checkpoint ``src`` (optionally only those under ``prefix``, which is
    stripped) to ``dst`` with plain metadata and nothing else.

    Args:
        src: A checkpoint saved by MMEngine.
        dst: Output path.
        prefix: Keep only keys starting with this (e.g. ``'student.'``) and remove it.
        meta: Extra metadata to store.
    """
    checkpoint = _load_checkpoint(src, map_location='cpu')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if prefix is not None:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            raise KeyError(f'checkpoint {src} has no weights under {prefix!r}')
    old_meta = checkpoint.get('meta') or {}
    new_meta = {k: old_meta[k] for k in PLAIN_META_KEYS if k in old_meta}
    return save_lean_checkpoint(state_dict, {**new_meta, **(meta or {})}, dst)
