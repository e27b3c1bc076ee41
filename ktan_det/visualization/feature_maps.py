"""What the distiller sees on one image: teacher, T2S(teacher) and student maps per neck level,
their difference and the discriminator's verdict."""
import copy
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from torch import Tensor

from ..losses import standardize
from ..utils.checkpoint import load_weights, weights_under
from ..utils.export import STUDENT_PREFIX
from ..utils.wrappers import unwrap


def reduce_channels(feat: Tensor) -> np.ndarray:
    """A (C, H, W) map as (H, W): the mean over channels of the absolute activation."""
    return feat.abs().mean(dim=0).float().cpu().numpy()


def image_batch(cfg: Config, image_path: str, data_preprocessor: nn.Module) -> dict:
    """One image through the config's test pipeline (without annotations) and preprocessor."""
    pipeline = [t for t in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
                if t['type'] != 'LoadAnnotations']
    data = Compose(pipeline)(dict(img_path=image_path, img_id=0))
    return data_preprocessor(pseudo_collate([data]), False)


@torch.no_grad()
def feature_panels(distiller: nn.Module, inputs: Tensor,
                   student: Optional[nn.Module] = None) -> List[Dict[str, np.ndarray]]:
    """The maps of the first image of ``inputs``, one dict per tapped level.

    Keys: ``teacher``, ``t2s``, ``student`` (each reduced by :func:`reduce_channels`),
    ``difference`` (the mean over channels of ``|T2S(teacher) - student|``, computed before
    reduction on the maps as the imitation loss compares them, i.e. after its ``normalize``),
    ``discriminator`` (the discriminator's ``real_probability`` of each student patch:
    for the vanilla loss the probability the patch is the teacher's, in [0, 1]; absent when the
    distiller has no discriminator).

    Args:
        distiller: A :class:`~ktan_det.models.KTANDistiller`.
        inputs: Preprocessed input batch.
        student: Another student detector to show instead of the distiller's own (e.g. a plain
            student, judged by the same discriminator).
    """
    teacher_feats = distiller.teacher.extract_feat(inputs)
    levels = distiller.tap_levels
    targets = distiller.t2s([teacher_feats[i] for i in levels])
    student_feats = (student or distiller.student).extract_feat(inputs)
    student_feats = [student_feats[i] for i in levels]
    verdicts = None
    disc = distiller.discriminator
    if disc is not None:
        verdicts = [distiller.loss_adv.real_probability(logits)
                    for logits in disc(student_feats, inputs if unwrap(disc).conditional
                                       else None)]
    normalize = getattr(distiller.loss_imitation, 'normalize', None)
    panels = []
    for j, lvl in enumerate(levels):
        panel = dict(teacher=reduce_channels(teacher_feats[lvl][0]),
                     t2s=reduce_channels(targets[j][0]),
                     student=reduce_channels(student_feats[j][0]),
                     difference=reduce_channels(standardize(targets[j][:1], normalize)[0] -
                                                standardize(student_feats[j][:1], normalize)[0]))
        if verdicts is not None:
            panel['discriminator'] = verdicts[j][0, 0].cpu().numpy()
        panels.append(panel)
    return panels


def load_distiller(cfg: Config, checkpoint: str) -> nn.Module:
    """The distiller of ``cfg`` (its teacher from ``model.teacher_ckpt``) with the student, T2S
    and discriminator of ``checkpoint``, in eval mode."""
    model = MODELS.build(cfg.model)
    model.load_state_dict(load_weights(checkpoint)[0], strict=True)
    return model.eval()


def load_run(config: str, checkpoint: str,
             cfg_options: Optional[dict] = None) -> Tuple[Config, nn.Module]:
    """A KTAN run as the analysis tools take it: its config (after ``cfg_options``, its default
    registry scope set) and its distiller (:func:`load_distiller`)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return cfg, load_distiller(cfg, checkpoint)


def load_student(cfg: Config, checkpoint: str) -> nn.Module:
    """The student detector of distiller config ``cfg`` with the weights of ``checkpoint``: a
    plain detector checkpoint (e.g. the plain student) or a distiller checkpoint."""
    model = MODELS.build(ConfigDict(cfg.model.student))
    state = load_weights(checkpoint)[0]
    model.load_state_dict(weights_under(state, STUDENT_PREFIX) or state, strict=True)
    return model.eval()
