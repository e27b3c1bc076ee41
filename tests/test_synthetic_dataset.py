import hashlib
import json
import os.path as osp

import numpy as np
import pytest
from pycocotools.coco import COCO

from ktan_det.datasets import (
    CLASSES,
    SyntheticCocoDataset,
    generate_dataset,
    render_image,
    synthetic_coco,
)
from ktan_det.datasets.synthetic import (
    DEFAULT_SCENE,
    MIN_VISIBLE_FRACTION,
    render_image_with_masks,
)

from conftest import ground_truth_map

# The benchmark's scene (configs/synthetic/_base_/synthetic_detection.py), tuples as there.
EASY_SCENE = dict(objects=(2, 6), clutter=(2, 6), noise=(2.0, 8.0), object_scale=0.75,
                  sizes=dict(small=0.35, medium=0.55, large=0.1), inside=True)

# A train image of the default scene and its annotations, hashed as generated before scenes
# existed: data sets made then are made again byte for byte.
V2_TRAIN_3 = '0ebe09b1e6fe8808'


def test_same_seed_same_images_other_seed_other_images():
    image_a, anns_a = render_image(seed=3, split='train', index=5)
    image_b, anns_b = render_image(seed=3, split='train', index=5)
    image_c, _ = render_image(seed=4, split='train', index=5)
    image_val, _ = render_image(seed=3, split='val', index=5)
    image_test, _ = render_image(seed=3, split='test', index=5)
    assert np.array_equal(image_a, image_b) and anns_a == anns_b
    assert not np.array_equal(image_a, image_c)
    assert not np.array_equal(image_a, image_val)
    assert not np.array_equal(image_test, image_val) and not np.array_equal(image_test, image_a)


def test_generated_files_are_byte_identical(tmp_path):
    generate_dataset(str(tmp_path / 'a'), num_train=4, num_val=2, num_test=2, seed=1,
                     image_size=96)
    generate_dataset(str(tmp_path / 'b'), num_train=4, num_val=2, num_test=2, seed=1,
                     image_size=96)
    names = ('annotations/train.json', 'annotations/val.json', 'annotations/test.json',
             'train/000003.png', 'val/000001.png', 'test/000001.png')
    for name in names:
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()
    # Adding the test split left the other splits as they were.
    generate_dataset(str(tmp_path / 'c'), num_train=4, num_val=2, seed=1, image_size=96)
    assert not (tmp_path / 'c' / 'annotations' / 'test.json').exists()
    for name in names[:2] + names[3:5]:
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'c' / name).read_bytes()


def test_default_scene_is_the_scene_of_data_sets_made_before_scenes():
    image, anns = render_image(seed=0, split='train', index=3, image_size=128)
    assert hashlib.sha256(image.tobytes() + repr(anns).encode()).hexdigest()[:16] == \
        V2_TRAIN_3
    same, same_anns = render_image(0, 'train', 3, 128, scene=DEFAULT_SCENE)
    assert np.array_equal(image, same) and anns == same_anns


def test_scene_sets_how_many_objects_and_their_sizes():
    counts, small = [], True
    for index in range(40):
        _, anns = render_image(seed=0, split='train', index=index, image_size=128,
                               scene=dict(EASY_SCENE, objects=(5, 5), sizes=dict(
                                   small=1.0, medium=0.0, large=0.0)))
        counts.append(len(anns))
        # A small object's side is at most 28 pixels, by up to 2:1 and rotated: within 48.
        small &= all(max(a['bbox'][2:]) <= 48 for a in anns)
    # At most 5 (occluded ones are left out), and all small.
    assert max(counts) == 5 and small
    # Shrunk by object_scale: at most 14 pixels, within 24.
    for index in range(10):
        _, anns = render_image(seed=0, split='train', index=index, image_size=96,
                               scene=dict(EASY_SCENE, object_scale=0.5, sizes=dict(
                                   small=1.0, medium=0.0, large=0.0)))
        assert all(max(a['bbox'][2:]) <= 24 for a in anns)


@pytest.mark.parametrize('scene,error,match', [
    (dict(crowd=3), KeyError, 'unknown keys'),
    (dict(objects=(3, 1)), ValueError, 'objects'),
    (dict(noise=(-1.0, 2.0)), ValueError, 'noise'),
    (dict(sizes=dict(small=0.5, medium=0.2, large=0.2)), ValueError, 'summing to 1'),
    (dict(object_scale=0), ValueError, 'object_scale'),
])
def test_bad_scene_is_refused_naming_the_key(scene, error, match, tmp_path):
    with pytest.raises(error, match=match):
        generate_dataset(str(tmp_path / 'syn'), num_train=1, num_val=1, scene=scene)
    assert not (tmp_path / 'syn').exists()


@pytest.mark.parametrize('split,index,scene', [('train', i, None) for i in range(8)] + [
    ('test', i, None) for i in range(4)] + [('train', i, EASY_SCENE) for i in range(6)])
def test_boxes_are_tight_around_the_visible_pixels(split, index, scene):
    _, anns, masks = render_image_with_masks(seed=0, split=split, index=index,
                                             image_size=96 if scene else 160, scene=scene)
    assert len(anns) == len(masks)
    for ann, (visible, full_area) in zip(anns, masks):
        ys, xs = np.nonzero(visible)
        x, y, w, h = ann['bbox']
        assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert ann['area'] == w * h
        assert visible.sum() >= MIN_VISIBLE_FRACTION * full_area


def test_split_is_valid_coco_with_every_size_and_class(tmp_path):
    root = generate_dataset(str(tmp_path / 'syn'), num_train=2, num_val=120, seed=0)
    coco = COCO(osp.join(root, 'annotations', 'val.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    areas = np.array([a['area'] for a in coco.dataset['annotations']])
    assert (areas < 32**2).any() and ((areas >= 32**2) & (areas < 96**2)).any() \
        and (areas >= 96**2).any()
    assert {a['category_id'] for a in coco.dataset['annotations']} == set(range(1, 9))
    ratios = [a['bbox'][2] / a['bbox'][3] for a in coco.dataset['annotations']]
    assert min(ratios) < 0.6 and max(ratios) > 1.7
    # The ground truth scored as detections must give a perfect mAP: boxes, ids and areas agree.
    assert ground_truth_map(coco) == pytest.approx(1.0)


def test_refuses_to_overwrite_and_leaves_no_partial_directory(tmp_path):
    target = tmp_path / 'syn'
    target.mkdir()
    (target / 'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        generate_dataset(str(target), num_train=2, num_val=1)
    assert (target / 'keep.txt').read_text() == 'mine'
    with pytest.raises(ValueError, match='image_size'):
        generate_dataset(str(tmp_path / 'other'), num_train=2, num_val=1, image_size=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['syn']


def test_dataset_generates_on_first_use_and_reuses(tmp_path, monkeypatch):
    notes = []
    monkeypatch.setattr(synthetic_coco, 'print_log', lambda msg, **_: notes.append(msg))
    root = str(tmp_path / 'syn') + '/'
    params = dict(num_train=3, num_val=2, num_test=1, seed=0, image_size=96,
                  scene=dict(EASY_SCENE, objects=(1, 2)))
    dataset = SyntheticCocoDataset(data_root=root, ann_file='annotations/train.json',
                                   data_prefix=dict(img=''), generate=params, pipeline=[])
    assert len(dataset) > 0 and dataset.metainfo['classes'] == CLASSES
    with open(osp.join(root, 'synthetic.json')) as f:
        assert json.load(f) == json.loads(json.dumps(params))  # the scene's tuples as lists
    SyntheticCocoDataset(data_root=root, ann_file='annotations/val.json', test_mode=True,
                         data_prefix=dict(img=''), generate=params, pipeline=[])
    assert not any('generated with' in n for n in notes)  # the same parameters: no note
    stamp = osp.getmtime(osp.join(root, 'annotations', 'train.json'))
    SyntheticCocoDataset(data_root=root, ann_file='annotations/val.json', test_mode=True,
                         data_prefix=dict(img=''), generate=dict(params, num_train=50),
                         pipeline=[])
    assert osp.getmtime(osp.join(root, 'annotations', 'train.json')) == stamp
