"""Loss weights relative to the detection loss: the balancing rule (ktan-det's).

A loss weight means nothing across data sets, models and schedules: the same imitation weight
pulls hard on one student and not at all on another, as its loss and the detection loss scale
differently. The balancing rule states each KTAN term's pull instead, as a fraction of the
detection loss's: the norm of the gradient the term puts on the student's neck outputs over
the norm of the detection loss's. Every gradient that reaches the student's backbone and neck
passes through those maps (imitation and the discriminator read the tapped levels, the RoI head
reads all of them), and measuring there costs a backward pass through the heads only.
"""
from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import all_reduce
from torch import Tensor

from .schedule import KTAN_LOSS_NAMES, KTANSchedule, Point, check_loss_names, check_point

DETECTION, TERM = 0, 1


def gradient_norm(loss: Tensor, feats: Sequence[Tensor]) -> Tensor:
    """The norm of ``loss``'s gradient on ``feats`` (all of them together), in float32; the
    graph is kept for the step's own backward pass."""
    grads = torch.autograd.grad(loss, list(feats), retain_graph=True, allow_unused=True)
    squares = [g.float().pow(2).sum() for g in grads if g is not None]
    return torch.stack(squares).sum().sqrt() if squares else loss.new_zeros((), dtype=torch.float)


class LossBalancer(nn.Module):
    """Sets each balanced KTAN loss's balance factor (:meth:`KTANSchedule.set_balance`) so
    that its gradient on the student's neck outputs is ``targets[name]`` times the detection
    loss's.

    Over ``window`` from each loss's start (a length, as a point of training: iterations,
    ``dict(epoch=E)`` or ``dict(fraction=F)``), every step measures both gradient norms, the
    term's at its config weight (the schedule's ramp and balance divided out), averages them
    over the ranks and adds them up; after the step the factor is ``targets[name] * sum of
    detection norms / sum of term norms``. After the window it stays fixed. AMP's loss scale
    cancels out of the ratio (:meth:`observe`). The sums are a buffer: checkpoints keep them
    and ``--resume`` continues a window where it stopped.

    Args:
        targets: Per KTAN loss, the gradient norm it should have relative to the detection
            loss's. Losses not named keep their config weight.
        window: How long each loss's factor is measured, from its start.
    """

    def __init__(self, targets: Mapping[str, float], window: Point) -> None:
        super().__init__()
        check_loss_names(targets, 'train_cfg.balance.targets')
        bad = {name: t for name, t in targets.items() if not t > 0}
        if bad:
            raise ValueError(f'train_cfg.balance.targets must be > 0, got {bad}')
        self.targets = dict(targets)
        self.window = check_point(window, 'balance.window')
        # Per loss: the summed detection and term gradient norms of its window so far.
        self.register_buffer('norm_sums',
                             torch.zeros(len(KTAN_LOSS_NAMES), 2, dtype=torch.float64))

    def measuring(self, schedule: KTANSchedule, iteration: int,
                  scales: Mapping[str, float]) -> Sequence[str]:
        """The balanced losses on at ``iteration`` and within their window."""
        length = schedule.resolve(self.window, 'balance.window')
        return [name for name in self.targets if scales.get(name, 0) > 0
                and iteration < schedule.start(name) + length]

    def observe(self, schedule: KTANSchedule, iteration: int, detection: Tensor,
                terms: Mapping[str, Tensor], scales: Mapping[str, float],
                feats: Sequence[Tensor], loss_scale: float = 1.0) -> Optional[Dict[str, float]]:
        """Measure this step's gradient norms for the losses in their window and update their
        balance factors; return the new factors, or ``None`` outside every window.

        Args:
            schedule: The distiller's schedule, whose factors are set.
            iteration: The current iteration.
            detection: The student's detection loss (its terms summed).
            terms: The KTAN losses of this step by name (``'imitation'``, ...), as
                ``train_step`` adds them (scaled).
            scales: This step's scale of each loss (:attr:`Stage.scales`).
            feats: The student's neck outputs.
            loss_scale: AMP's loss scale (the optimizer wrapper's), by which the losses are
                multiplied before their gradients are taken and the norms divided after, as
                the step's own backward pass is scaled: under float16 the gradients of the
                neck maps would otherwise underflow.
        """
        names = [name for name in self.measuring(schedule, iteration, scales) if name in terms]
        if not names:
            return None
        total = detection + sum(terms.values())
        norms = torch.stack([
            gradient_norm(loss_scale * detection, feats),
            *(gradient_norm(loss_scale * terms[name], feats) / scales[name] for name in names),
            total.detach().float()]) / loss_scale
        # Every rank then sets the same factors, and a step whose loss is not finite on some
        # rank (skipped by all) measures nothing.
        all_reduce(norms, 'mean')
        if not torch.isfinite(norms).all():
            return None
        factors = {}
        for name, norm in zip(names, norms[1:-1].double()):
            sums = self.norm_sums[KTAN_LOSS_NAMES.index(name)]
            sums[DETECTION] += norms[0].double()
            sums[TERM] += norm
            if sums[TERM] > 0:  # a term with no gradient yet keeps its factor
                factors[name] = float(self.targets[name] * sums[DETECTION] / sums[TERM])
                schedule.set_balance(name, factors[name])
        return factors
