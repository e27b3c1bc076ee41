"""Watch the distillation: the discriminator's balance, GAN collapse."""
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from .finite_weights import FiniteWeightsHook
from .hook_group import HookGroup


@HOOKS.register_module()
class DiscriminatorMonitorHook(Hook):
    """Warn when the GAN collapses.

    A warning is raised when for ``patience`` adversarial iterations in a row the discriminator
    wins completely (``disc_acc >= win_acc``: it separates everything, its gradients to the
    student saturate; lower its learning rate or ``disc_steps``) or loses completely
    (``disc_acc <= lose_acc``: no better than chance, it gives the student no signal).
    ``disc_acc`` is the discriminator's balanced accuracy on real (T2S(teacher)) and fake
    (student) patches with its loss form's decision threshold (0.5 = chance, 1 = perfect
    separation), which the distiller logs every adversarial iteration. The warnings so far are
    logged as ``disc_collapse_warnings``.

    Args:
        patience: Iterations in a row before warning.
        win_acc: Accuracy counted as a complete win.
        lose_acc: Accuracy counted as a complete loss.
    """

    priority = 'NORMAL'

    def __init__(self, patience: int = 200, win_acc: float = 0.99,
                 lose_acc: float = 0.5) -> None:
        if patience < 1 or not 0 <= lose_acc < win_acc <= 1:
            raise ValueError('DiscriminatorMonitorHook: need patience >= 1 and '
                             '0 <= lose_acc < win_acc <= 1')
        self.patience = patience
        self.win_acc = win_acc
        self.lose_acc = lose_acc
        self.streak_kind: Optional[str] = None
        self.streak = 0
        self.num_warnings = 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
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


@HOOKS.register_module()
class DistillationMonitorHook(HookGroup):
    """Watch the distillation: installs :class:`DiscriminatorMonitorHook` (GAN collapse
    warnings) and :class:`~ktan_det.hooks.FiniteWeightsHook` (no checkpoint with NaN or inf
    weights).

    Args:
        patience, win_acc, lose_acc: :class:`DiscriminatorMonitorHook`'s.
    """

    priority = 'NORMAL'

    def __init__(self, patience: int = 200, win_acc: float = 0.99,
                 lose_acc: float = 0.5) -> None:
        super().__init__([DiscriminatorMonitorHook(patience, win_acc, lose_acc),
                          FiniteWeightsHook()])
