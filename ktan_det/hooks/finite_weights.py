"""Refuse to write a checkpoint whose weights hold NaN or inf."""
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..engine.checkpoints import checkpoint_due
from .runner_state import ktan_model


@HOOKS.register_module()
class FiniteWeightsHook(Hook):
    """Before each regular checkpoint is written, check the distiller's weights: NaN or inf
    weights stop training with an error instead of being saved (the last good checkpoint stays
    the latest). Every rank checks (DDP keeps the weights identical), so all raise together
    and none waits for another; hence not ``before_save_checkpoint``, which runs on rank 0 only.
    """

    priority = 'NORMAL'  # before CheckpointHook (VERY_LOW) at the same point

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if checkpoint_due(runner, by_epoch=False):
            self._check(runner)

    def after_train_epoch(self, runner) -> None:
        if checkpoint_due(runner, by_epoch=True):
            self._check(runner)

    def _check(self, runner) -> None:
        bad = [name for name, value in ktan_model(runner).state_dict().items()
               if value.is_floating_point() and not torch.isfinite(value).all()]
        if bad:
            raise RuntimeError(
                f'refusing to save a checkpoint at iter {runner.iter + 1}: {len(bad)} weights '
                f'hold NaN or inf ({", ".join(bad[:5])}); the last saved checkpoint is kept')
