"""Checkpoints shaped like MMDetection's 2020 model-zoo files, with random weights.

The zoo's Faster R-CNN and RetinaNet files (e.g. ``faster_rcnn_r101_fpn_1x_coco_20200130``)
were written by MMDetection 2.0 with PyTorch's old (non-zip) serialization: a dict of
``meta`` (``mmdet_version``, ``config``, ``CLASSES``, ...) and ``state_dict``, whose keys are
those MMDetection 3.x builds from the same config. This writes such a file for any detector
config, so the real loading path runs where the zoo cannot be downloaded (tests,
``tools/gpu_smoke.py``). It does not prove that the zoo files themselves load.
"""
from typing import Sequence

import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict

ZOO_MMDET_VERSION = '2.0.0'


def save_zoo_style_checkpoint(model_cfg: dict, classes: Sequence[str], path: str,
                              seed: int = 0) -> str:
    """Build ``model_cfg`` with random weights (no pretrained initialisation) and save it at
    ``path`` as a 2020 model-zoo file would be; return ``path``."""
    model_cfg = ConfigDict(model_cfg)
    model_cfg.backbone.init_cfg = None  # random: nothing downloads
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.init_weights()
    meta = dict(mmdet_version=ZOO_MMDET_VERSION, CLASSES=tuple(classes),
                config=f'model = {model_cfg.to_dict()!r}', epoch=12, iter=0)
    torch.save(dict(meta=meta, state_dict=model.state_dict()), path,
               _use_new_zipfile_serialization=False)
    return path
