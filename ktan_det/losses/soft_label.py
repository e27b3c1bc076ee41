"""Soft labels: the student's class distribution follows the teacher's, at a temperature."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

SCORE_TYPES = ('softmax', 'sigmoid')


@MODELS.register_module()
class SoftLabelLoss(nn.Module):
    """Temperature-scaled KL divergence from teacher to student class scores.

    KTAN transfers the teacher's probability distributions; applying them per RoI (two-stage
    heads, softmax over classes + background) and per anchor (dense heads with sigmoid scores,
    a binary KL per class) is ktan-det's adaptation to detection.

    Args:
        temperature: Softening temperature T; the loss is scaled by T^2 so that its gradient
            does not shrink as T grows (Hinton et al.).
        score_type: ``'softmax'`` for RoI classifiers, ``'sigmoid'`` for dense heads.
        loss_weight: Weight of the loss.
    """

    def __init__(self, temperature: float = 2.0, score_type: str = 'softmax',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if score_type not in SCORE_TYPES:
            raise ValueError(f'SoftLabelLoss: score_type={score_type!r}, expected one of '
                             f'{SCORE_TYPES}')
        if temperature <= 0:
            raise ValueError(f'SoftLabelLoss: temperature={temperature} must be positive')
        self.temperature = temperature
        self.score_type = score_type
        self.loss_weight = loss_weight

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                score_type: Optional[str] = None) -> Tensor:
        """Loss for logits of shape (num_samples, num_classes).

        softmax: mean over samples of KL(p_t || p_s). sigmoid: mean over samples of the sum over
        classes of the binary KL. ``score_type`` overrides the loss's own (a two-stage
        distiller compares its RPN's sigmoid objectness with it too). Teacher logits are
        detached here.
        """
        if student_logits.shape != teacher_logits.shape:
            raise ValueError(f'SoftLabelLoss: student logits {tuple(student_logits.shape)} vs '
                             f'teacher {tuple(teacher_logits.shape)}')
        t = self.temperature
        if student_logits.shape[0] == 0:  # nothing to compare (e.g. no proposal at all)
            return student_logits.sum() * 0.0
        # float32 under autocast too (the sigmoid path's ops would otherwise run in half).
        student_logits, teacher_logits = student_logits.float(), teacher_logits.detach().float()
        if (score_type or self.score_type) == 'softmax':
            kl = F.kl_div(F.log_softmax(student_logits / t, dim=-1),
                          F.log_softmax(teacher_logits / t, dim=-1),
                          reduction='none', log_target=True).sum(-1)
        else:
            p_t = (teacher_logits / t).sigmoid()
            log_p_s, log_q_s = F.logsigmoid(student_logits / t), F.logsigmoid(-student_logits / t)
            log_p_t, log_q_t = F.logsigmoid(teacher_logits / t), F.logsigmoid(-teacher_logits / t)
            kl = (p_t * (log_p_t - log_p_s) + (1 - p_t) * (log_q_t - log_q_s)).sum(-1)
        return self.loss_weight * t * t * kl.mean()
