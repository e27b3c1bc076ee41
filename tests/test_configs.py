"""Every shipped config builds its model and computes its losses on a synthetic batch."""
import glob
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper

from conftest import REPO

# Data and runtime only: exercised by the configs built below.
DATA_ONLY = ('synthetic_detection.py', 'student_schedule.py', 'glyph_detection.py',
             'ktan_runtime.py')
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if osp.basename(p) not in DATA_ONLY)


def _num_classes(model_cfg) -> int:
    head = model_cfg.get('roi_head', {}).get('bbox_head') or model_cfg.get('bbox_head')
    return head['num_classes']


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds_and_computes_losses(config, tmp_path):
    cfg = Config.fromfile(config)
    if cfg.model.type == 'KTANDistiller' or cfg.get('dataset_type', '').startswith('Synthetic'):
        # MMDetection's own tools/train.py must find ktan_det's modules.
        assert 'ktan_det' in cfg.custom_imports.imports
    torch.manual_seed(0)
    if cfg.model.type != 'KTANDistiller':
        model = MODELS.build(cfg.model)
        batch = demo_mm_inputs(2, [(3, 96, 128)] * 2, num_classes=_num_classes(cfg.model))
        data = model.data_preprocessor(batch, True)
        losses = model.loss(data['inputs'], data['data_samples'])
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in losses.values())
        return
    # A teacher checkpoint of the config's own teacher structure (random weights): real
    # checkpoints are not on this machine.
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    cfg.model.teacher_ckpt = None
    torch.save(dict(state_dict=MODELS.build(cfg.model).teacher.state_dict()), teacher_ckpt)
    cfg.model.teacher_ckpt = teacher_ckpt
    model = MODELS.build(cfg.model)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = demo_mm_inputs(1, [(3, 96, 128)], num_classes=_num_classes(cfg.model.student))
    MessageHub.get_current_instance().update_info('iter', model.schedule.start('adv'))
    logs = model.train_step(batch, optim)
    expected = {'loss_imitation', 'loss_adv', 'loss_soft', 'disc_loss'}
    assert expected <= set(logs) and all(torch.isfinite(v) for v in logs.values())
