"""Ramp the KTAN loss weights in, and stop distillation at a given point."""
from typing import Dict, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..models.distiller import KTAN_LOSS_NAMES
from .runner_state import ktan_model


@HOOKS.register_module()
class KTANLossWeightHook(Hook):
    """Multiply each KTAN loss weight by a schedule before every iteration.

    Each loss in ``warmup_iters`` ramps linearly from 0 to its config weight over that many
    iterations, starting where it is first applied (after the TGN stage; for the adversarial
    loss, after ``train_cfg.adv_start_iter`` as well). From ``stop_iter`` (or the first
    iteration of ``stop_epoch``) on, every KTAN loss is off and the teacher no longer runs: the
    student finishes on its detection loss alone. The schedule is a function of the iteration,
    so a resumed run continues it exactly.

    Example::

        custom_hooks = [dict(type='KTANLossWeightHook', warmup_iters=dict(adv=500),
                             stop_iter=9000)]

    Args:
        warmup_iters: Ramp length per loss (``'imitation'``, ``'adv'``, ``'soft'``).
        stop_iter: First iteration without distillation.
        stop_epoch: First epoch without distillation (epoch-based loops).
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: Optional[Dict[str, int]] = None,
                 stop_iter: Optional[int] = None, stop_epoch: Optional[int] = None) -> None:
        self.warmup_iters = dict(warmup_iters or {})
        unknown = set(self.warmup_iters) - set(KTAN_LOSS_NAMES)
        if unknown:
            raise ValueError(f'KTANLossWeightHook: unknown losses {sorted(unknown)}; '
                             f'expected some of {KTAN_LOSS_NAMES}')
        if any(v < 0 for v in self.warmup_iters.values()):
            raise ValueError('KTANLossWeightHook: warmup_iters must be >= 0')
        self.stop_iter = stop_iter
        self.stop_epoch = stop_epoch

    def scales(self, iteration: int, epoch: int, tgn_iters: int,
               adv_start_iter: int) -> Dict[str, float]:
        """The weight multipliers at ``iteration`` (0-based) and ``epoch``."""
        if (self.stop_iter is not None and iteration >= self.stop_iter) or (
                self.stop_epoch is not None and epoch >= self.stop_epoch):
            return {name: 0.0 for name in KTAN_LOSS_NAMES}
        scales = {}
        for name in KTAN_LOSS_NAMES:
            start = tgn_iters + (adv_start_iter if name == 'adv' else 0)
            ramp = self.warmup_iters.get(name, 0)
            scales[name] = 1.0 if ramp == 0 else min(max((iteration - start + 1) / ramp, 0.0),
                                                      1.0)
        return scales

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = ktan_model(runner)
        model.loss_scales.update(self.scales(runner.iter, runner.epoch, model.tgn_iters,
                                             model.adv_start_iter))
        for name, scale in model.loss_scales.items():
            runner.message_hub.update_scalar(f'train/scale_{name}', scale)
