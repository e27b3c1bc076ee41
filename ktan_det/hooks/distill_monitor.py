"""Watch the distillation: discriminator balance, feature distances, GAN collapse."""
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from .runner_state import checkpoint_due, ktan_model


@HOOKS.register_module()
class DistillationMonitorHook(Hook):
    """Log how distillation goes and warn when the GAN collapses.

    Logged every iteration (as ``train/...`` scalars, so in every visualisation backend):
    ``disc_acc``, the discriminator's balanced accuracy on real (T2S(teacher)) and fake
    (student) patches with its loss form's decision threshold (0.5 = chance, 1 = perfect
    separation); and ``feat_dist_l<i>``, the mean squared distance between the student's and
    T2S(teacher)'s raw maps at each tapped neck level ``i``.

    Before each regular checkpoint is written, the weights are checked: NaN or inf weights stop
    training with an error instead of being saved (the last good checkpoint stays the latest).

    A warning is raised when for ``patience`` adversarial iterations in a row the discriminator
    wins completely (``disc_acc >= win_acc``: it separates everything, its gradients to the
    student saturate; lower its learning rate or ``disc_steps``) or loses completely
    (``disc_acc <= lose_acc``: no better than chance, it gives the student no signal).

    Args:
        patience: Iterations in a row before warning.
        win_acc: Accuracy counted as a complete win.
        lose_acc: Accuracy counted as a complete loss.
    """

    priority = 'NORMAL'

    def __init__(self, patience: int = 200, win_acc: float = 0.99,
                 lose_acc: float = 0.5) -> None:
        if patience < 1 or not 0 <= lose_acc < win_acc <= 1:
            raise ValueError('DistillationMonitorHook: need patience >= 1 and '
                             '0 <= lose_acc < win_acc <= 1')
        self.patience = patience
        self.win_acc = win_acc
        self.lose_acc = lose_acc
        self.streak_kind: Optional[str] = None
        self.streak = 0
        self.num_warnings = 0

    def before_train(self, runner) -> None:
        ktan_model(runner).log_level_distances = True

    def _watch_discriminator(self, runner, outputs) -> None:
        accuracy = (outputs or {}).get('disc_acc')
        if accuracy is None:
            return
        accuracy = float(accuracy)
        kind = 'wins' if accuracy >= self.win_acc else 'loses' if accuracy <= self.lose_acc \
            else None
        self.streak = self.streak + 1 if kind is not None and kind == self.streak_kind else \
            int(kind is not None)
        self.streak_kind = kind
        if kind is not None and self.streak == self.patience:
            self.num_warnings += 1
            advice = ('lower its learning rate or disc_steps, or raise the adversarial weight '
                      'ramp' if kind == 'wins' else
                      'raise its learning rate, disc_steps or width')
            runner.logger.warning(
                f'KTAN: the discriminator {kind} completely (disc_acc {accuracy:.3f}) for '
                f'{self.patience} iterations in a row at iter {runner.iter + 1}: {advice}')
        runner.message_hub.update_scalar('train/disc_collapse_warnings', self.num_warnings)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._watch_discriminator(runner, outputs)
        if checkpoint_due(runner, by_epoch=False):
            self._check_finite_weights(runner)

    def after_train_epoch(self, runner) -> None:
        if checkpoint_due(runner, by_epoch=True):
            self._check_finite_weights(runner)

    def _check_finite_weights(self, runner) -> None:
        """Before CheckpointHook writes: every rank (DDP keeps them identical) raises together,
        so the last good checkpoint stays the latest and no rank waits for another."""
        model = ktan_model(runner)
        bad = [name for name, value in model.state_dict().items()
               if value.is_floating_point() and not torch.isfinite(value).all()]
        if bad:
            raise RuntimeError(
                f'refusing to save a checkpoint at iter {runner.iter + 1}: {len(bad)} weights '
                f'hold NaN or inf ({", ".join(bad[:5])}); the last saved checkpoint is kept')
