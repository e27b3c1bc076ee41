"""Save and restore the random number generators, so that a resumed run continues exactly."""
import random
import warnings
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook

from ..engine.checkpoints import checkpoint_due

META_KEY = 'rng_states'


def capture_rng_state() -> dict:
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store each rank's Python, numpy and torch (CPU and CUDA) random states in checkpoints,
    and restore them when resuming.

    MMEngine saves only the seed and re-seeds on resume, so augmentation and sampling draws after
    a resume differ from an uninterrupted run. The states are captured on the iteration (or epoch)
    a checkpoint is saved and after each validation (for best checkpoints), gathered from every
    rank, stored in ``meta['rng_states']``, and put back on resume just before the first new
    batch is drawn, that is after the iteration-based loop has replayed the data loader to skip
    the finished batches (which draws random numbers). Validation is made neutral to the
    training streams (states saved before it, restored after it), since a resumed run does not
    repeat the validation its checkpoint was followed by. Data-loader worker processes keep
    their own generators, which are not restored: for an exact resume use ``num_workers=0``
    (sample order is exact either way).
    """

    priority = 'NORMAL'  # before CheckpointHook (VERY_LOW) at the same point

    def __init__(self) -> None:
        self._states: Optional[list] = None
        self._pending: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def _capture(self) -> None:
        state = self._before_val if self._before_val is not None else capture_rng_state()
        self._states = all_gather_object(state)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if checkpoint_due(runner, by_epoch=False):
            self._capture()

    def after_train_epoch(self, runner) -> None:
        if checkpoint_due(runner, by_epoch=True):
            self._capture()

    def before_val(self, runner) -> None:
        self._before_val = capture_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._capture()  # a best checkpoint may be saved right after this

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_rng_state(self._before_val)
            self._before_val = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._states is not None:
            checkpoint.setdefault('meta', {})[META_KEY] = self._states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = (checkpoint.get('meta') or {}).get(META_KEY)
        if not runner._resume or states is None:
            return
        if len(states) != get_world_size():
            warnings.warn(f'RandomStateHook: the checkpoint holds random states of '
                          f'{len(states)} ranks, this run has {get_world_size()}; not restored',
                          stacklevel=2)
            return
        self._pending = states[get_rank()]

    def before_train_epoch(self, runner) -> None:
        if self._pending is None:
            return
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator') and runner.iter > 0:
            # The iteration-based loop replays `iter` batches right after this hook and then
            # draws the next one: restore in between.
            loop.dataloader_iterator = _RestoreAfter(loop.dataloader_iterator, runner.iter,
                                                     self._pending)
        else:
            restore_rng_state(self._pending)
        self._pending = None


class _RestoreAfter:
    """Iterator proxy that restores random states once ``skip`` items have been drawn."""

    def __init__(self, iterator, skip: int, state: dict) -> None:
        self._iterator, self._skip, self._state = iterator, skip, state

    def __next__(self):
        if self._skip == 0 and self._state is not None:
            restore_rng_state(self._state)
            self._state = None
        self._skip -= 1
        return next(self._iterator)

    def __iter__(self):
        return self

    def __getattr__(self, name):
        return getattr(self._iterator, name)
