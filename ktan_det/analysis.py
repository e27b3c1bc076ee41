"""Which loss drives the student: the gradient each loss term of a KTAN step puts on the
student's backbone and neck, their sizes and directions (tools/loss_gradients.py)."""
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .utils.wrappers import unwrap

# The student's parameters the distillation losses reach; its heads get no distillation
# gradient but the soft labels' (bbox head), so comparing there would mislead.
FEATURE_MODULES = ('backbone', 'neck')


def loss_gradients(distiller: nn.Module, data: dict) -> Dict[str, Tensor]:
    """The gradient of each loss term of a KTAN step on the student's backbone and neck,
    flattened: ``detection`` (the student's own losses, summed) and each distillation loss on
    (``imitation``, ``adv``, ``soft``), weighted and scaled as ``train_step`` weighs them once
    every start and ramp is past (the schedule's steady stage). Nothing is updated.

    Args:
        distiller: A :class:`~ktan_det.models.KTANDistiller`, in the mode to analyse (train
            mode for the statistics of a training step).
        data: A batch from the data loader.
    """
    student = unwrap(distiller.student)
    params = [p for name, p in student.named_parameters()
              if p.requires_grad and name.split('.')[0] in FEATURE_MODULES]
    data = distiller.data_preprocessor(data, True)
    inputs, data_samples = data['inputs'], data['data_samples']
    losses, record = distiller.student_forward(inputs, data_samples)
    terms = dict(detection=distiller.parse_losses(losses)[0])
    stage = distiller.schedule.steady_stage()
    targets = distiller.teacher_targets(stage, inputs, data_samples, record)
    distilled = distiller.ktan_losses(stage, inputs, data_samples, targets, record)
    terms.update({name[len('loss_'):]: loss for name, loss in distilled.items()})
    grads = {}
    for name, loss in terms.items():
        per_param = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        grads[name] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                                 for g, p in zip(per_param, params)])
    return grads


def summarize_gradients(batches: List[Dict[str, Tensor]]) -> Dict[str, Dict[str, List[float]]]:
    """Per loss term, over batches: its gradient's ``norm``, the ratio of that norm to the
    detection gradient's (``vs_detection``) and the cosine of the angle to the detection and
    imitation gradients (``cos_detection``, ``cos_imitation``; the latter when imitation is
    on; neither for the term itself)."""
    summary = {}
    for grads in batches:
        for name, grad in grads.items():
            stats = summary.setdefault(name, {})
            stats.setdefault('norm', []).append(float(grad.norm()))
            stats.setdefault('vs_detection', []).append(
                float(grad.norm() / grads['detection'].norm().clamp_min(1e-12)))
            for other in ('detection', 'imitation'):
                if other in grads and other != name:
                    stats.setdefault(f'cos_{other}', []).append(
                        float(F.cosine_similarity(grad, grads[other], dim=0)))
    return summary
