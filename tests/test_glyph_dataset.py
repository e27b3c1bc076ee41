"""The second synthetic data set (digits on printed pages): deterministic, exact boxes, COCO."""
import json
import os.path as osp

import numpy as np
import pytest
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope
from pycocotools.coco import COCO

from ktan_det.datasets import SyntheticGlyphsDataset, generate_dataset, generate_glyph_dataset
from ktan_det.datasets.glyphs import CLASSES, MIN_VISIBLE_FRACTION, render_glyph_image

from conftest import ground_truth_map


def test_same_seed_same_page_other_seed_or_split_another():
    image, anns, _ = render_glyph_image(seed=3, split='train', index=5)
    again, again_anns, _ = render_glyph_image(seed=3, split='train', index=5)
    assert image.shape == (80, 80, 3) and np.array_equal(image, again) and anns == again_anns
    for other in (render_glyph_image(4, 'train', 5), render_glyph_image(3, 'val', 5),
                  render_glyph_image(3, 'test', 5)):
        assert not np.array_equal(image, other[0])


def test_generated_files_are_byte_identical(tmp_path):
    for name in ('a', 'b'):
        generate_glyph_dataset(str(tmp_path / name), num_train=3, num_val=2, num_test=2, seed=1)
    for name in ('annotations/train.json', 'annotations/test.json', 'train/000002.png',
                 'val/000001.png', 'test/000000.png'):
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()
    params = json.loads((tmp_path / 'a' / 'synthetic.json').read_text())
    assert params['generator'] == 'glyphs' and params['image_size'] == 80


@pytest.mark.parametrize('split,index', [('train', i) for i in range(10)] + [('test', 0)])
def test_boxes_are_tight_around_the_visible_pixels(split, index):
    _, anns, masks = render_glyph_image(seed=0, split=split, index=index)
    assert len(anns) == len(masks) > 0
    for ann, (visible, full_area) in zip(anns, masks):
        ys, xs = np.nonzero(visible)
        x, y, w, h = ann['bbox']
        assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert ann['area'] == w * h and visible.sum() >= MIN_VISIBLE_FRACTION * full_area


def test_valid_coco_with_every_class_and_perfect_map_for_the_ground_truth(tmp_path):
    root = generate_glyph_dataset(str(tmp_path / 'glyphs'), num_train=1, num_val=60, seed=0)
    coco = COCO(osp.join(root, 'annotations', 'val.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert {a['category_id'] for a in coco.dataset['annotations']} == set(range(1, 11))
    sides = np.array([max(a['bbox'][2:]) for a in coco.dataset['annotations']])
    assert sides.min() < 16 and sides.max() > 32  # small and medium digits
    assert ground_truth_map(coco) == pytest.approx(1.0)


@pytest.mark.parametrize('scene,error,match', [
    (dict(fonts=3), KeyError, 'unknown keys'),
    (dict(digits=(0, 2)), ValueError, 'digits'),
    (dict(heights=(3, 20)), ValueError, 'heights'),
])
def test_bad_scene_is_refused_naming_the_key(scene, error, match, tmp_path):
    with pytest.raises(error, match=match):
        generate_glyph_dataset(str(tmp_path / 'glyphs'), num_train=1, num_val=1, scene=scene)
    assert not (tmp_path / 'glyphs').exists()


def test_the_dataset_generates_on_first_use_with_its_ten_classes(tmp_path):
    init_default_scope('mmdet')
    root = str(tmp_path / 'glyphs') + '/'
    dataset = DATASETS.build(dict(
        type='SyntheticGlyphsDataset', data_root=root, ann_file='annotations/train.json',
        data_prefix=dict(img=''), pipeline=[],
        generate=dict(num_train=3, num_val=1, seed=0)))
    assert isinstance(dataset, SyntheticGlyphsDataset) and len(dataset) == 3
    assert dataset.metainfo['classes'] == CLASSES
    assert json.loads(open(root + 'synthetic.json').read())['generator'] == 'glyphs'


def test_a_data_set_of_the_other_generator_is_refused(tmp_path):
    init_default_scope('mmdet')
    root = generate_dataset(str(tmp_path / 'shapes'), num_train=2, num_val=1) + '/'
    with pytest.raises(ValueError, match='holds the shapes data set, not the glyphs'):
        DATASETS.build(dict(type='SyntheticGlyphsDataset', data_root=root,
                            ann_file='annotations/train.json', data_prefix=dict(img=''),
                            pipeline=[], generate=dict(num_train=2, num_val=1)))
