"""Bad configurations fail at build time with an error that names the problem."""
import copy
from types import SimpleNamespace

import pytest
from mmdet.registry import MODELS
from mmengine.optim import build_optim_wrapper

from ktan_det.models import DistillationSetupError
from ktan_det.models.setup_checks import soft_label_score_type

from conftest import KTAN_CFG, tiny_batch, tiny_run_config


@pytest.fixture
def cfg(tiny_data, tiny_teacher_ckpt, tmp_path):
    cfg = tiny_run_config(KTAN_CFG, tiny_data, str(tmp_path))
    cfg.model.teacher_ckpt = None  # structure checks need no weights
    return cfg


def _fails(cfg, match, error=DistillationSetupError):
    with pytest.raises(error, match=match):
        MODELS.build(cfg.model)


def test_different_classes(cfg):
    cfg.model.student.roi_head.bbox_head.num_classes = 5
    _fails(cfg, 'teacher predicts 8 classes and student 5')


def test_different_input_normalisation(cfg):
    cfg.model.student.data_preprocessor.bgr_to_rgb = False
    cfg.model.data_preprocessor = None
    _fails(cfg, 'data_preprocessor.bgr_to_rgb is True for the teacher and False')


def test_tap_level_out_of_range_or_repeated(cfg):
    cfg.model.tap_levels = [0, 5]
    _fails(cfg, r'tap_levels=\[0, 5\] is out of range.*0..4')
    cfg.model.tap_levels = [1, 1]
    _fails(cfg, 'distinct')


def test_different_number_of_neck_levels(cfg):
    cfg.model.student.neck.num_outs = 4
    cfg.model.student.rpn_head.anchor_generator.strides = [4, 8, 16, 32]
    _fails(cfg, 'teacher neck has 5 output levels and student neck 4')


def test_student_without_neck(cfg):
    student = cfg.model.student
    student.pop('neck')
    student.rpn_head.in_channels = 64
    _fails(cfg, 'student .* has no neck')


def test_cascade_heads_are_refused_for_soft_labels(cfg):
    teacher = copy.deepcopy(cfg.model.teacher)
    cascade_student = copy.deepcopy(cfg.model.student)
    stage = cascade_student['roi_head']
    cascade_student['roi_head'] = dict(
        type='CascadeRoIHead', num_stages=1, stage_loss_weights=[1],
        bbox_roi_extractor=stage['bbox_roi_extractor'], bbox_head=[stage['bbox_head']])
    cascade_student['train_cfg']['rcnn'] = [cascade_student['train_cfg']['rcnn']]
    cascade_student['type'] = 'CascadeRCNN'
    cfg.model.student, cfg.model.teacher = cascade_student, teacher
    _fails(cfg, 'soft labels support StandardRoIHead.*student has CascadeRoIHead.*'
           'loss_soft=None')
    cfg.model.loss_soft = None
    assert MODELS.build(cfg.model).loss_soft is None


def test_anchor_free_dense_heads_are_refused_for_soft_labels():
    head = MODELS.build(dict(type='FCOSHead', num_classes=8, in_channels=8, feat_channels=8,
                             stacked_convs=1, norm_cfg=None))
    fcos = SimpleNamespace(bbox_head=head)  # what the check reads of a single-stage detector
    with pytest.raises(DistillationSetupError,
                       match='anchor head .* the teacher has FCOSHead.*loss_soft=None'):
        soft_label_score_type(fcos, fcos)


def test_adversarial_training_without_a_discriminator_optimizer(cfg):
    model = MODELS.build(cfg.model)
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.pop('discriminator')
    with pytest.raises(ValueError, match="no 'discriminator' entry"):
        build_optim_wrapper(model, optim_cfg)
    cfg.model.discriminator = None
    _fails(cfg, 'loss_adv needs a discriminator')


def test_unknown_train_cfg_keys(cfg):
    cfg.model.train_cfg = dict(tgn_iters=10, adv_start=3)
    _fails(cfg, r"unknown KTAN train_cfg keys: \['adv_start'\]")


@pytest.mark.parametrize('key', ['disc_steps', 'soft_rois_per_img'])
def test_counts_below_one(cfg, key):
    cfg.model.train_cfg[key] = 0
    _fails(cfg, rf'train_cfg.{key}=0 must be >= 1')


def test_unknown_soft_label_rois(cfg):
    cfg.model.train_cfg.soft_rois = 'proposals'
    _fails(cfg, r"train_cfg.soft_rois='proposals' must be one of \('student', 'teacher'\)")


def test_soft_label_options_without_effect_or_with_mismatched_rpns(cfg):
    cfg.model.train_cfg.update(soft_rois='teacher', soft_objectness=1.0)
    soft = cfg.model.loss_soft
    cfg.model.loss_soft = None
    _fails(cfg, r'train_cfg.soft_rois applies to soft labels of two-stage')
    cfg.model.loss_soft, cfg.model.train_cfg.soft_rois = soft, 'student'
    cfg.model.student.rpn_head.anchor_generator.ratios = [1.0]
    _fails(cfg, r'soft_objectness compares the two RPNs anchor by anchor')
    cfg.model.train_cfg.soft_objectness = -1.0
    _fails(cfg, r'soft_objectness=-1.0 must be >= 0')


def test_necks_with_different_strides_fail_at_the_first_step(cfg, tiny_teacher_ckpt):
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper

    cfg.model.teacher_ckpt = tiny_teacher_ckpt
    # The student's FPN starts one backbone stage later: same number of levels, other strides.
    neck = cfg.model.student.neck
    neck.start_level, neck.add_extra_convs = 1, 'on_output'
    cfg.model.student.rpn_head.anchor_generator.strides = [8, 16, 32, 64, 128]
    cfg.model.student.roi_head.bbox_roi_extractor.featmap_strides = [8, 16, 32, 64]
    model = MODELS.build(cfg.model)
    model.train()
    MessageHub.get_current_instance().update_info('iter', 1000)
    with pytest.raises(DistillationSetupError, match='neck level 0: teacher map .* student map'):
        model.train_step(tiny_batch(cfg), build_optim_wrapper(model, cfg.optim_wrapper))
