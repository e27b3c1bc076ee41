"""The real-data configs (COCO, VOC, RetinaNet) as shipped, on stand-ins for their data and
teachers: zoo-shaped random teacher checkpoints load strictly and safely, and each config trains
2 iterations on a tiny set in its data set's own layout and class names, and evaluates.

What changes from the shipped files: the data root, the image scale (128), the run length, and
the students' torchvision:// backbone initialisation (nothing downloads). The real zoo files
themselves are not tried here.
"""
import os.path as osp

import pytest
import torch
from mmdet.datasets import CocoDataset, VOCDataset
from mmdet.registry import MODELS
from mmengine.config import Config

from ktan_det.datasets.stand_ins import write_coco_split, write_voc_split
from ktan_det.models.teacher import teacher_model_cfg
from ktan_det.utils.zoo_checkpoint import save_zoo_style_checkpoint

from conftest import REPO, _set_image_size, dump_config, load_tool

CONFIGS = osp.join(REPO, 'configs')
COCO_KTAN = osp.join(CONFIGS, 'ktan_faster_rcnn_r101_to_r18.py')
RETINA_KTAN = osp.join(CONFIGS, 'ktan_retinanet_r101_to_r18.py')
VOC_KTAN = osp.join(CONFIGS, 'ktan_faster_rcnn_r101_to_r18_voc.py')
IMAGE = 128


@pytest.fixture(scope='module')
def stand_in_data(tmp_path_factory):
    """A 4-image COCO (train2017 + val2017) and a 2+2+2-image VOCdevkit (2007 and 2012
    trainval, 2007 test) of synthetic images under the real class names."""
    root = tmp_path_factory.mktemp('real_layouts')
    coco, devkit = str(root / 'coco') + '/', str(root / 'VOCdevkit') + '/'
    classes = CocoDataset.METAINFO['classes']
    write_coco_split(coco, 'annotations/instances_train2017.json', 'train2017/', classes, 4,
                     IMAGE, split='train')
    write_coco_split(coco, 'annotations/instances_val2017.json', 'val2017/', classes, 2, IMAGE,
                     split='val')
    voc = VOCDataset.METAINFO['classes']
    write_voc_split(devkit, '2007', 'trainval', voc, 2, IMAGE, split='train')
    write_voc_split(devkit, '2012', 'trainval', voc, 2, IMAGE, seed=1, split='train')
    write_voc_split(devkit, '2007', 'test', voc, 2, IMAGE, split='val')
    return dict(coco=coco, voc=devkit)


@pytest.fixture(scope='module')
def zoo_teachers(tmp_path_factory):
    """Per config, a zoo-shaped random checkpoint of its teacher (written once)."""
    root, paths = tmp_path_factory.mktemp('zoo'), {}

    def teacher_of(config):
        if config not in paths:
            classes = (VOCDataset if config == VOC_KTAN else CocoDataset).METAINFO['classes']
            teacher_cfg, _ = teacher_model_cfg(Config.fromfile(config).model.teacher)
            paths[config] = save_zoo_style_checkpoint(
                teacher_cfg.to_dict(), classes, str(root / f'{len(paths)}.pth'))
        return paths[config]
    return teacher_of


@pytest.mark.parametrize('config', [COCO_KTAN, RETINA_KTAN])
def test_zoo_shaped_teacher_checkpoints_load_strictly_and_safely(config, zoo_teachers):
    """An old-serialization file with the zoo's meta loads (MMEngine's safe loading) into the
    shipped config's teacher, every key matched."""
    classes = CocoDataset.METAINFO['classes']
    path = zoo_teachers(config)
    with open(path, 'rb') as f:
        assert f.read(2) != b'PK'  # the old serialization, not a zip archive
    cfg = Config.fromfile(config)
    cfg.model.teacher_ckpt = path
    cfg.model.student.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    saved = torch.load(path, weights_only=True)
    assert saved['meta']['CLASSES'] == tuple(classes)
    teacher = model.teacher.state_dict()
    assert set(teacher) == set(saved['state_dict'])
    assert all(torch.equal(teacher[k], v) for k, v in saved['state_dict'].items())


def _short_run(config, data_root, teacher_ckpt, work_dir):
    cfg = Config.fromfile(config)
    _set_image_size(cfg._cfg_dict, IMAGE)
    cfg.model.teacher_ckpt = teacher_ckpt
    cfg.model.student.backbone.init_cfg = None
    # A 2-iteration student scores every box below the shipped threshold (0.05), and COCO's
    # evaluation of no boxes logs no metric.
    test_cfg = cfg.model.student.test_cfg
    (test_cfg.rcnn if 'rcnn' in test_cfg else test_cfg).score_thr = 0.0
    if 'rcnn' in test_cfg:  # 64 RoIs per image, not 512: the teacher's RoI head scores each
        cfg.model.student.train_cfg.rcnn.sampler.num = 64
        cfg.model.student.train_cfg.rpn_proposal.max_per_img = 100
    cfg.train_cfg.max_epochs = 1
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_dataloader.batch_size = 2
    if cfg.train_dataloader.dataset.type == 'RepeatDataset':  # VOC's 3x repeat
        cfg.train_dataloader.dataset.times = 1
    cfg.default_hooks.logger.interval = 1
    cfg.visualizer.pop('name', None)
    path = dump_config(cfg, osp.join(osp.dirname(work_dir), 'run.py'))
    return load_tool('train').main([path, '--data-root', data_root, '--work-dir', work_dir])


@pytest.mark.parametrize('config,data', [(COCO_KTAN, 'coco'), (VOC_KTAN, 'voc'),
                                         (RETINA_KTAN, 'coco')])
def test_real_data_configs_train_two_iterations_and_evaluate(config, data, stand_in_data,
                                                             zoo_teachers, tmp_path):
    classes = (VOCDataset if data == 'voc' else CocoDataset).METAINFO['classes']
    runner = _short_run(config, stand_in_data[data], zoo_teachers(config), str(tmp_path / 'work'))
    assert runner.iter == 2
    metric = 'pascal_voc/mAP' if data == 'voc' else 'coco/bbox_mAP'
    assert f'val/{metric}' in runner.message_hub.log_scalars
    assert tuple(runner.train_dataloader.dataset.metainfo['classes']) == tuple(classes)
    assert osp.isfile(osp.join(str(tmp_path / 'work'), 'student_export', 'student.pth'))
