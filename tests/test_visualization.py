import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from ktan_det.losses import standardize
from ktan_det.visualization import feature_panels, image_batch, load_distiller, load_student

from conftest import load_tool

vis_tool, curves_tool = load_tool('vis_features'), load_tool('plot_curves')


@pytest.fixture
def distiller_and_batch(tiny_ktan_run, tiny_data):
    config, _, checkpoint = tiny_ktan_run
    cfg = Config.fromfile(config)
    distiller = load_distiller(cfg, checkpoint)
    batch = image_batch(cfg, osp.join(tiny_data, 'val', '000000.png'),
                        distiller.data_preprocessor)
    return cfg, distiller, batch


def test_panels_hold_one_row_per_level_with_the_documented_values(distiller_and_batch):
    _, distiller, batch = distiller_and_batch
    panels = feature_panels(distiller, batch['inputs'])
    assert len(panels) == len(distiller.tap_levels) == 5
    with torch.no_grad():
        teacher = distiller.teacher.extract_feat(batch['inputs'])
        student = distiller.student.extract_feat(batch['inputs'])
        targets = distiller.t2s([teacher[i] for i in distiller.tap_levels])
        mode = distiller.loss_imitation.normalize  # the synthetic config's: 'channel'
        assert mode == 'channel'
        for lvl, panel, target in zip(distiller.tap_levels, panels, targets):
            expected = (standardize(target, mode) - standardize(student[lvl], mode))[0]
            expected = expected.abs().mean(0).numpy()
            np.testing.assert_allclose(panel['difference'], expected, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(panel['student'], student[lvl][0].abs().mean(0).numpy(),
                                       rtol=1e-5)
            assert panel['teacher'].shape == panel['t2s'].shape == expected.shape
            np.testing.assert_allclose(panel['t2s'], target[0].abs().mean(0).numpy(), rtol=1e-5)
            verdict = panel['discriminator']
            assert verdict.ndim == 2 and (verdict >= 0).all() and (verdict <= 1).all()


def test_a_compared_student_gets_its_own_maps(distiller_and_batch, tiny_ktan_run):
    cfg, distiller, batch = distiller_and_batch
    other = load_student(cfg, tiny_ktan_run[2])
    with torch.no_grad():
        other.backbone.conv1.weight.mul_(-1)
    own = feature_panels(distiller, batch['inputs'])
    compared = feature_panels(distiller, batch['inputs'], other)
    np.testing.assert_allclose(own[0]['t2s'], compared[0]['t2s'])
    assert not np.allclose(own[0]['student'], compared[0]['student'])


def test_tools_write_the_pictures(tiny_ktan_run, tiny_data, tmp_path):
    config, work_dir, checkpoint = tiny_ktan_run
    image = osp.join(tiny_data, 'val', '000001.png')
    out = vis_tool.main([config, checkpoint, image, '--out', str(tmp_path / 'maps.png'),
                         '--compare', checkpoint])
    assert osp.getsize(out) > 10000
    series = curves_tool.curves(work_dir)
    assert {'loss_imitation', 'loss_adv', 'loss_soft', 'disc_acc', 'coco/bbox_mAP',
            'feat_dist_l0', 'feat_dist_l4', 'disc_collapse_warnings',
            'teacher/coco/bbox_mAP', 'scale_adv'} <= set(series)
    assert series['coco/bbox_mAP'][-1][0] == 3  # val logged against the iteration
    plot = curves_tool.main([work_dir, work_dir, '--labels', 'a', 'b', '--out',
                             str(tmp_path / 'curves.png')])
    assert osp.getsize(plot) > 10000


def test_figure_grid_has_a_row_per_level_and_the_documented_columns(distiller_and_batch):
    _, distiller, batch = distiller_and_batch
    students = [('KTAN', distiller.student), ('other', distiller.student)]
    panels = [feature_panels(distiller, batch['inputs'], s) for _, s in students]
    fig = vis_tool.render(distiller, batch, students, panels, score_thr=0.3)
    pictures = [ax for ax in fig.axes if ax.images]  # colour bars are axes too
    assert len(pictures) == 5 * (3 + 2 * 3)
    titles = [ax.get_title() for ax in pictures[:9]]
    assert titles[1:] == ['teacher', 'T2S(teacher)', 'KTAN: student',
                          'KTAN: |T2S(teacher) - student|', 'KTAN: D: P(teacher)',
                          'other: student', 'other: |T2S(teacher) - student|',
                          'other: D: P(teacher)']
    verdict = pictures[5].images[0]
    assert verdict.get_clim() == (0, 1)
