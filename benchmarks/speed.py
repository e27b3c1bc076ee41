"""Training-step builders for the speed and memory benchmark: one callable per variant that
runs a full training step (forward, backward, optimizer updates) on a fixed batch."""
import copy
import os.path as osp
import sys
from typing import Callable, Optional

import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper

from ktan_det.models.teacher import build_frozen_teacher, teacher_model_cfg
from ktan_det.utils.config import repoint_data_root

from .runs import read_config
from .variants import (
    BENCH_PACKAGES,
    KTAN_CFG,
    MMRAZOR_LOSSES,
    NO_ADV_OPTIONS,
    NO_IMITATION_OPTIONS,
    NO_SOFT_OPTIONS,
    STUDENT_CFG,
    mmrazor_config,
)

# Full KTAN and KTAN with one component off, as run options. (The quality benchmark's
# experiments change weights, schedules or the TGN stage: their steps time the same as ktan's.)
# Without the synthetic config's teacher-map cache (a fixed batch would hit it at every step);
# `ktan-cached` times a step whose teacher maps are all cached, as most steps of a synthetic
# run after its first epoch are.
NO_CACHE_OPTIONS = ['model.train_cfg.cache_teacher_maps=None']
KTAN_SPEED_VARIANTS = {
    'ktan': NO_CACHE_OPTIONS,
    'ktan-no-imitation': [*NO_CACHE_OPTIONS, *NO_IMITATION_OPTIONS],
    'ktan-no-adv': [*NO_CACHE_OPTIONS, *NO_ADV_OPTIONS],
    'ktan-no-soft': [*NO_CACHE_OPTIONS, *NO_SOFT_OPTIONS],
    'ktan-cached': [],
}
SPEED_VARIANTS = ('plain', 'floor', *KTAN_SPEED_VARIANTS, 'cwd', 'pkd')


def mmrazor_available() -> bool:
    if osp.isdir(osp.join(BENCH_PACKAGES, 'mmrazor')) and BENCH_PACKAGES not in sys.path:
        sys.path.insert(0, BENCH_PACKAGES)
    try:
        import mmrazor.models  # noqa: F401

        from . import mmrazor_compat  # noqa: F401
    except ImportError:
        return False
    return True


def fixed_batch(batch_size: int, data_root: Optional[str] = None) -> dict:
    """The first ``batch_size`` training images of the synthetic set (or of the copy in
    ``data_root``), collated."""
    cfg = Config.fromfile(STUDENT_CFG)
    if data_root is not None:
        repoint_data_root(cfg, data_root)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.pipeline = [t for t in dataset_cfg.pipeline if t['type'] != 'RandomFlip']
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[i] for i in range(batch_size)])


def build_step(variant: str, teacher_ckpt: str, batch: dict) -> Callable[[], None]:
    """A callable running one training step of ``variant`` on ``batch``, on the GPU if there
    is one."""
    torch.manual_seed(0)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if variant in ('plain', 'floor'):
        student_cfg = Config.fromfile(STUDENT_CFG)
        student = MODELS.build(student_cfg.model).to(device)
        student.init_weights()
        student.train()
        optim = build_optim_wrapper(student, _without_steps(student_cfg.optim_wrapper))
        if variant == 'plain':
            return lambda: student.train_step(batch, optim)
        teacher = _frozen_teacher(teacher_ckpt).to(device)

        def step():  # MMEngine's train_step plus the teacher's backbone and neck: the floor
            with optim.optim_context(student):
                data = student.data_preprocessor(batch, True)
                with torch.no_grad():
                    teacher.extract_feat(data['inputs'])
                losses = student(**data, mode='loss')
            optim.update_params(student.parse_losses(losses)[0])
        return step
    if variant in KTAN_SPEED_VARIANTS:
        cfg = read_config(KTAN_CFG, [f'model.teacher_ckpt={teacher_ckpt}',
                                     *KTAN_SPEED_VARIANTS[variant]])
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        model.train()
        optim = build_optim_wrapper(model, _without_steps(cfg.optim_wrapper))
        # Past the TGN stage and the adversarial start: every configured loss is on.
        iteration = model.schedule.start('adv')

        def step():
            MessageHub.get_current_instance().update_info('iter', iteration)
            model.train_step(batch, optim)
        return step
    if variant in MMRAZOR_LOSSES:
        cfg = mmrazor_config(MMRAZOR_LOSSES[variant], teacher_ckpt)
        model = MODELS.build(cfg.model).to(device)
        model.init_weights()
        model.train()
        optim = build_optim_wrapper(model, _without_steps(cfg.optim_wrapper))
        return lambda: model.train_step(batch, optim)
    raise KeyError(f'unknown speed variant {variant!r}; expected one of {SPEED_VARIANTS}')


def _without_steps(optim_wrapper: dict) -> dict:
    """``optim_wrapper`` with every learning rate 0. The optimizers still do all their work,
    but the weights stay put: the student's proposals, and with them the RoI count and sizes
    that dominate a Faster R-CNN step on a CPU, are the same in every step of every variant,
    instead of drifting apart as each variant overfits the fixed batch its own way."""
    optim_wrapper = copy.deepcopy(optim_wrapper)
    for key, value in optim_wrapper.items():
        if key == 'optimizer':
            value['lr'] = 0.0
        elif isinstance(value, dict):
            optim_wrapper[key] = _without_steps(value)
    return optim_wrapper


def _frozen_teacher(teacher_ckpt: Optional[str]):
    model_cfg, _ = teacher_model_cfg(Config.fromfile(KTAN_CFG).model.teacher)
    return build_frozen_teacher(model_cfg, teacher_ckpt)

