"""GAN loss forms for the patch discriminator and the student's adversarial term."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from .feature_imitation import foreground_weights

GAN_TYPES = ('vanilla', 'lsgan', 'hinge')


@MODELS.register_module()
class AdversarialLoss(nn.Module):
    """Discriminator and generator (student) losses of one GAN form, over lists of patch maps.

    "Real" is T2S(teacher features), "fake" is the student's features. Every level's patch map
    counts equally; within a map, patches count equally or, with ``fg_weight``, by whether
    they overlap a ground-truth box.

    Args:
        gan_type: ``'vanilla'`` (binary cross-entropy on logits), ``'lsgan'`` (least squares,
            targets 1 for real and 0 for fake) or ``'hinge'``.
        loss_weight: Weight of the student's adversarial term (:meth:`generator_loss`); 0.1 is
            ktan-det's default, chosen on the synthetic benchmark. The
            discriminator's own loss (:meth:`discriminator_loss`) is not weighted: it has an
            optimizer of its own whose learning rate sets its pace.
        fg_weight: Weight of the patches that overlap a ground-truth box relative to the
            others, in both the discriminator's and the student's loss (ktan-det's option;
            1.0: every patch alike). Values > 1 make the discriminator judge object regions,
            where student and teacher maps differ most.
    """

    def __init__(self, gan_type: str = 'lsgan', loss_weight: float = 0.1,
                 fg_weight: float = 1.0) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f'AdversarialLoss: gan_type={gan_type!r}, expected one of '
                             f'{GAN_TYPES}')
        if fg_weight <= 0:
            raise ValueError(f'AdversarialLoss: fg_weight={fg_weight} must be positive')
        self.gan_type = gan_type
        self.loss_weight = loss_weight
        self.fg_weight = fg_weight

    def patch_weights(self, fg_masks: Sequence[Tensor]) -> Optional[list]:
        """Per level, the (N, 1, h, w) weight of each patch given which overlap a ground-truth
        box (``fg_masks``, (N, h, w) per level); ``None`` when every patch counts alike."""
        if self.fg_weight == 1.0:
            return None
        return [foreground_weights(mask, self.fg_weight)[:, None] for mask in fg_masks]

    def _real_term(self, logits: Tensor) -> Tensor:
        """Per-patch loss of calling ``logits`` real."""
        if self.gan_type == 'vanilla':
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits),
                                                      reduction='none')
        if self.gan_type == 'lsgan':
            return (logits - 1).pow(2)
        return F.relu(1 - logits)

    def _fake_term(self, logits: Tensor) -> Tensor:
        """Per-patch loss of calling ``logits`` fake."""
        if self.gan_type == 'vanilla':
            return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits),
                                                      reduction='none')
        if self.gan_type == 'lsgan':
            return logits.pow(2)
        return F.relu(1 + logits)

    @staticmethod
    def _mean(terms: Tensor, weights: Optional[Tensor]) -> Tensor:
        return terms.mean() if weights is None else (terms * weights).sum() / weights.sum()

    def discriminator_loss(self, real_logits: Sequence[Tensor], fake_logits: Sequence[Tensor],
                           weights: Optional[Sequence[Tensor]] = None) -> Tensor:
        """Loss of the discriminator: call real maps real and fake maps fake (``weights``:
        :meth:`patch_weights`, the same for real and fake maps of the same images)."""
        weights = weights or [None] * len(real_logits)
        terms = [self._mean(self._real_term(r.float()), w)
                 + self._mean(self._fake_term(f.float()), w)
                 for r, f, w in zip(real_logits, fake_logits, weights)]
        return 0.5 * sum(terms) / len(terms)

    def generator_loss(self, fake_logits: Sequence[Tensor],
                       weights: Optional[Sequence[Tensor]] = None) -> Tensor:
        """Weighted loss of the student: make the discriminator call its maps real
        (``weights``: :meth:`patch_weights`).

        For ``hinge`` this is the usual ``-D(fake)``, unbounded below by design.
        """
        fake_logits = [logits.float() for logits in fake_logits]  # float32 under autocast
        weights = weights or [None] * len(fake_logits)
        terms = [self._mean(-logits if self.gan_type == 'hinge' else self._real_term(logits), w)
                 for logits, w in zip(fake_logits, weights)]
        return self.loss_weight * sum(terms) / len(terms)

    @property
    def decision_threshold(self) -> float:
        """Logit above which the discriminator calls a patch real (0.5 for lsgan's 0/1 targets)."""
        return 0.5 if self.gan_type == 'lsgan' else 0.0

    def real_probability(self, logits: Tensor) -> Tensor:
        """Map logits to [0, 1], read as "how sure the discriminator is the patch is teacher".

        vanilla: the sigmoid, a true probability. lsgan: the output regressed toward 1 (real) and
        0 (fake), clipped to [0, 1]. hinge: the margin region [-1, 1] mapped linearly to [0, 1].
        """
        if self.gan_type == 'vanilla':
            return logits.sigmoid()
        if self.gan_type == 'lsgan':
            return logits.clamp(0, 1)
        return (logits.clamp(-1, 1) + 1) / 2

    def accuracy(self, real_logits: Sequence[Tensor], fake_logits: Sequence[Tensor]) -> Tensor:
        """Share of patches the discriminator classifies right, balanced over real and fake.

        0.5 is chance (the student fools it half the time); 1.0 means it separates them completely.
        """
        th = self.decision_threshold
        real = torch.cat([(r > th).flatten().float() for r in real_logits]).mean()
        fake = torch.cat([(f <= th).flatten().float() for f in fake_logits]).mean()
        return (real + fake) / 2
