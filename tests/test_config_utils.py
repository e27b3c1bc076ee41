import argparse

import pytest
from mmengine.config import Config

from ktan_det.utils import add_common_args, load_config, repoint_data_root

from conftest import KTAN_CFG, STUDENT_CFG, TEACHER_CFG

DOCUMENTED_KEYS = ('train_dataloader.dataset.data_root', 'val_dataloader.dataset.data_root',
                   'test_dataloader.dataset.data_root', 'val_evaluator.ann_file',
                   'test_evaluator.ann_file')


def _paths(cfg):
    return dict(train=cfg.train_dataloader.dataset.data_root,
                val=cfg.val_dataloader.dataset.data_root,
                test=cfg.test_dataloader.dataset.data_root,
                val_eval=cfg.val_evaluator.ann_file, test_eval=cfg.test_evaluator.ann_file)


@pytest.mark.parametrize('config', [TEACHER_CFG, STUDENT_CFG, KTAN_CFG])
def test_data_root_moves_every_dataset_and_evaluator(config):
    cfg = Config.fromfile(config)
    repoint_data_root(cfg, '/elsewhere/syn')
    assert _paths(cfg) == dict(train='/elsewhere/syn/', val='/elsewhere/syn/',
                               test='/elsewhere/syn/',
                               val_eval='/elsewhere/syn/annotations/val.json',
                               test_eval='/elsewhere/syn/annotations/test.json')


def test_documented_cfg_options_keys_move_everything():
    cfg = Config.fromfile(KTAN_CFG)
    cfg.merge_from_dict({key: '/x/' if key.endswith('data_root') else '/x/annotations/'
                         + key.split('_')[0] + '.json' for key in DOCUMENTED_KEYS})
    assert _paths(cfg) == dict(train='/x/', val='/x/', test='/x/',
                               val_eval='/x/annotations/val.json',
                               test_eval='/x/annotations/test.json')


def test_wrapped_datasets_and_evaluator_lists_follow():
    cfg = Config(dict(
        train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
            type='ConcatDataset', datasets=[dict(data_root='data/a/'),
                                            dict(data_root='data/a/')]))),
        val_dataloader=dict(dataset=dict(data_root='data/a/')),
        val_evaluator=[dict(type='CocoMetric', ann_file='data/a/annotations/val.json'),
                       dict(type='DumpDetResults')]))
    repoint_data_root(cfg, 'new')
    inner = cfg.train_dataloader.dataset.dataset.datasets
    assert [d.data_root for d in inner] == ['new/', 'new/']
    assert cfg.val_evaluator[0].ann_file == 'new/annotations/val.json'


def test_evaluator_outside_the_data_root_is_an_error():
    cfg = Config(dict(val_dataloader=dict(dataset=dict(data_root='data/a/')),
                      val_evaluator=dict(ann_file='/somewhere/else/val.json')))
    with pytest.raises(ValueError, match='/somewhere/else/val.json.*val_evaluator.ann_file'):
        repoint_data_root(cfg, 'new')


def test_load_config_applies_cli_arguments_like_mmdetection():
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    add_common_args(parser)
    args = parser.parse_args([KTAN_CFG, '--data-root', '/d', '--cfg-options',
                              'train_cfg.max_iters=7', 'model.teacher_ckpt=t.pth'])
    cfg = load_config(args)
    assert cfg.train_cfg.max_iters == 7 and cfg.model.teacher_ckpt == 't.pth'
    assert cfg.test_evaluator.ann_file == '/d/annotations/test.json'
    assert cfg.work_dir == './work_dirs/ktan_faster-rcnn_r50-to-r18_synthetic'
