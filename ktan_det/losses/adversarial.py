"""GAN loss forms for the patch discriminator and the student's adversarial term."""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

GAN_TYPES = ('vanilla', 'lsgan', 'hinge')


@MODELS.register_module()
class AdversarialLoss(nn.Module):
    """Discriminator and generator (student) losses of one GAN form, over lists of patch maps.

    "Real" is T2S(teacher features), "fake" is the student's features. Every level's patch map
    counts equally.

    Args:
        gan_type: ``'vanilla'`` (binary cross-entropy on logits), ``'lsgan'`` (least squares,
            targets 1 for real and 0 for fake) or ``'hinge'``.
        loss_weight: Weight of the student's adversarial term (:meth:`generator_loss`); 0.1 is
            ktan-det's default, chosen on the synthetic benchmark. The
            discriminator's own loss (:meth:`discriminator_loss`) is not weighted: it has an
            optimizer of its own whose learning rate sets its pace.
    """

    def __init__(self, gan_type: str = 'lsgan', loss_weight: float = 0.1) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f'AdversarialLoss: gan_type={gan_type!r}, expected one of '
                             f'{GAN_TYPES}')
        self.gan_type = gan_type
        self.loss_weight = loss_weight

    def _real_term(self, logits: Tensor) -> Tensor:
        if self.gan_type == 'vanilla':
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        if self.gan_type == 'lsgan':
            return (logits - 1).pow(2).mean()
        return F.relu(1 - logits).mean()

    def _fake_term(self, logits: Tensor) -> Tensor:
        if self.gan_type == 'vanilla':
            return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
        if self.gan_type == 'lsgan':
            return logits.pow(2).mean()
        return F.relu(1 + logits).mean()

    def discriminator_loss(self, real_logits: Sequence[Tensor],
                           fake_logits: Sequence[Tensor]) -> Tensor:
        """Loss of the discriminator: call real maps real and fake maps fake."""
        terms = [self._real_term(r.float()) + self._fake_term(f.float())
                 for r, f in zip(real_logits, fake_logits)]
        return 0.5 * sum(terms) / len(terms)

    def generator_loss(self, fake_logits: Sequence[Tensor]) -> Tensor:
        """Weighted loss of the student: make the discriminator call its maps real.

        For ``hinge`` this is the usual ``-D(fake)``, unbounded below by design.
        """
        fake_logits = [logits.float() for logits in fake_logits]  # float32 under autocast
        if self.gan_type == 'hinge':
            terms = [-logits.mean() for logits in fake_logits]
        else:
            terms = [self._real_term(logits) for logits in fake_logits]
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
