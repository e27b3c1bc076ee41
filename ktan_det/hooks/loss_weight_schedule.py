"""Give the distiller's KTAN schedule its ramps, its stop and the run's length; log its scales."""
from typing import Dict, Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from ..models.schedule import Point, RunLength, check_loss_names
from .runner_state import ktan_model


@HOOKS.register_module()
class KTANLossWeightHook(Hook):
    """Ramp the KTAN loss weights in, and stop distillation at a given point.

    Each loss in ``warmup_iters`` ramps linearly from 0 to its config weight over that many
    iterations, starting where it is first applied (after the TGN stage; for the adversarial
    loss, after ``train_cfg.adv_start_iter`` as well). From ``stop_iter`` (or the first
    iteration of ``stop_epoch``) on, every KTAN loss is off and the teacher no longer runs: the
    student finishes on its detection loss alone. Ramps and stops are points of training
    (iterations, ``dict(epoch=E)`` or ``dict(fraction=F)`` of the run).

    The distiller's :class:`~ktan_det.models.schedule.KTANSchedule` computes the scales; this
    hook hands it these settings and the run's length (which epochs and fractions need) before
    training, and logs the scales as ``scale_<loss>`` before every iteration.

    Example::

        custom_hooks = [dict(type='KTANLossWeightHook', warmup_iters=dict(adv=500),
                             stop_iter=9000)]

    Args:
        warmup_iters: Ramp length per loss (``'imitation'``, ``'adv'``, ``'soft'``).
        stop_iter: First point without distillation.
        stop_epoch: First epoch without distillation (epoch-based loops); the same as
            ``stop_iter=dict(epoch=stop_epoch)``.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: Optional[Dict[str, Point]] = None,
                 stop_iter: Optional[Point] = None, stop_epoch: Optional[int] = None) -> None:
        if stop_iter is not None and stop_epoch is not None:
            raise ValueError('KTANLossWeightHook: give stop_iter or stop_epoch, not both')
        self.warmup_iters = dict(warmup_iters or {})
        check_loss_names(self.warmup_iters, 'KTANLossWeightHook')
        if any(isinstance(v, int) and v < 0 for v in self.warmup_iters.values()):
            raise ValueError('KTANLossWeightHook: warmup_iters must be >= 0')
        self.stop = dict(epoch=stop_epoch) if stop_epoch is not None else stop_iter

    def before_train(self, runner) -> None:
        schedule = ktan_model(runner).schedule
        epoch_based = isinstance(runner.train_loop, EpochBasedTrainLoop)
        schedule.configure(self.warmup_iters, self.stop)
        schedule.set_run(RunLength(
            max_iters=runner.max_iters,
            iters_per_epoch=len(runner.train_dataloader) if epoch_based else None))

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        stage = ktan_model(runner).schedule.stage(runner.iter)
        for name, scale in stage.scales.items():
            runner.message_hub.update_scalar(f'train/scale_{name}', scale)
