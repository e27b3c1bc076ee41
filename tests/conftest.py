"""Shared fixtures: a tiny synthetic data set and tiny versions of the shipped configs."""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

import ktan_det  # noqa: F401  (registration)
from ktan_det.datasets import generate_dataset

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# benchmarks/ is not installed: import it from this checkout.
sys.path.insert(0, REPO)
SYNTHETIC = osp.join(REPO, 'configs', 'synthetic')
TEACHER_CFG = osp.join(SYNTHETIC, 'faster-rcnn_r50_fpn_teacher_synthetic.py')
STUDENT_CFG = osp.join(SYNTHETIC, 'faster-rcnn_r18_fpn_student_synthetic.py')
KTAN_CFG = osp.join(SYNTHETIC, 'ktan_faster-rcnn_r50-to-r18_synthetic.py')
TINY_IMAGE = 96

torch.set_num_threads(2)
init_default_scope('mmdet')


def shrink_detector(model: dict, base_channels: int, neck_channels: int) -> dict:
    """A ResNet-18 FPN Faster R-CNN with ``base_channels`` wide stages: same structure, ~50x
    cheaper, so the tests run the shipped configs' code paths in milliseconds."""
    model = copy.deepcopy(model)
    model['backbone'].update(depth=18, base_channels=base_channels)
    model['neck'].update(in_channels=[base_channels * 2**i for i in range(4)],
                         out_channels=neck_channels)
    model['neck']['norm_cfg'] = dict(type='GN', num_groups=8, requires_grad=True)
    model['backbone']['norm_cfg'] = dict(type='GN', num_groups=8, requires_grad=True)
    if 'rpn_head' in model:
        model['rpn_head'].update(in_channels=neck_channels, feat_channels=neck_channels)
        model['roi_head']['bbox_roi_extractor']['out_channels'] = neck_channels
        model['roi_head']['bbox_head'].update(in_channels=neck_channels, fc_out_channels=64)
        model['train_cfg']['rcnn']['sampler']['num'] = 32
        model['train_cfg']['rpn_proposal'].update(nms_pre=200, max_per_img=50)
        model['test_cfg']['rpn'].update(nms_pre=200, max_per_img=50)
    else:
        model['bbox_head'].update(in_channels=neck_channels, feat_channels=neck_channels,
                                  stacked_convs=1)
    return model


def tiny_teacher_model() -> dict:
    return shrink_detector(Config.fromfile(TEACHER_CFG).model.to_dict(), 16, 32)


def _set_image_size(node, size: int) -> None:
    if isinstance(node, dict):
        if node.get('type') == 'Resize':
            node['scale'] = (size, size)
        for value in node.values():
            _set_image_size(value, size)
    elif isinstance(node, list):
        for value in node:
            _set_image_size(value, size)


def tiny_run_config(config: str, data_root: str, work_dir: str, max_iters: int = 4,
                    **overrides) -> Config:
    """A shipped synthetic config shrunk to tiny models, ``data_root`` and a few iterations."""
    from ktan_det.utils import repoint_data_root
    cfg = Config.fromfile(config)
    repoint_data_root(cfg, data_root)
    _set_image_size(cfg._cfg_dict, TINY_IMAGE)
    if cfg.model.type == 'KTANDistiller':
        cfg.model.student = shrink_detector(cfg.model.student.to_dict(), 8, 16)
        cfg.model.teacher = tiny_teacher_model()
        cfg.model.discriminator.base_channels = 8
    else:
        cfg.model = shrink_detector(cfg.model.to_dict(), 8, 16)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        cfg[loader].batch_size = 2
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = max_iters
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    # Several runners share this process: each needs its own visualizer (named by the run).
    cfg.visualizer.pop('name', None)
    cfg.merge_from_dict(overrides)
    return cfg


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('data') / 'synthetic')
    generate_dataset(root, num_train=12, num_val=6, num_test=4, seed=0, image_size=TINY_IMAGE)
    return root + '/'


@pytest.fixture(scope='session')
def tiny_teacher_ckpt(tmp_path_factory) -> str:
    """A checkpoint of the tiny teacher (random weights, saved as MMEngine would)."""
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    teacher = MODELS.build(ConfigDict(tiny_teacher_model()))
    teacher.init_weights()
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save(dict(meta=dict(dataset_meta=dict(classes=ktan_det.datasets.CLASSES)),
                    state_dict=teacher.state_dict()), path)
    return path


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module, to run it in-process (no 4 s import per run)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'ktan_tools_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dump_config(cfg: Config, path) -> str:
    """Write ``cfg`` as a config file and return its path (tools take files)."""
    cfg.dump(str(path))
    return str(path)


@pytest.fixture(scope='session')
def tiny_ktan_run(tiny_data, tiny_teacher_ckpt, tmp_path_factory):
    """A finished 3-iteration KTAN run (every loss on) for tests that read runs:
    ``(config path, work dir, final checkpoint)``."""
    root = tmp_path_factory.mktemp('ktan_run')
    work_dir = str(root / 'work')
    cfg = tiny_run_config(KTAN_CFG, tiny_data, work_dir, max_iters=3)
    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    cfg.model.train_cfg = dict(tgn_iters=1, adv_start_iter=0, disc_steps=1)
    cfg.experiment_name = 'tiny_ktan_run'
    for hook in cfg.custom_hooks:
        if hook.type == 'TeacherGuardHook':
            hook.evaluate = True
    config = dump_config(cfg, root / 'ktan.py')
    load_tool('train').main([config])
    return config, work_dir, osp.join(work_dir, 'iter_3.pth')


def tiny_batch(cfg: Config, size: int = 2) -> dict:
    """The first ``size`` training samples of ``cfg``'s data set, collated."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    return pseudo_collate([dataset[i] for i in range(size)])


def ground_truth_map(coco) -> float:
    """The bbox mAP of a COCO data set's own boxes scored as detections: 1 exactly when its
    boxes, category ids and areas agree."""
    from pycocotools.cocoeval import COCOeval
    detections = coco.loadRes([dict(image_id=a['image_id'], category_id=a['category_id'],
                                    bbox=a['bbox'], score=1.0)
                               for a in coco.dataset['annotations']])
    evaluator = COCOeval(coco, detections, 'bbox')
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats[0]
