"""Synthetic images in the layouts of COCO and Pascal VOC, under their class names.

Stand-ins for the real data sets, so that the COCO, VOC and RetinaNet configs run unchanged
but for their data root (the tests, ``tools/gpu_smoke.py``): the synthetic shapes are labelled
with the first of the given class names, and every name is declared, as in the real files.
"""
import json
import os
import os.path as osp
from typing import Sequence
from xml.sax.saxutils import escape

import cv2

from .coco_files import write_coco_images
from .synthetic import render_image


def write_coco_split(data_root: str, ann_file: str, img_dir: str, classes: Sequence[str],
                     num_images: int, image_size: int, seed: int = 0,
                     split: str = 'train') -> str:
    """Write ``num_images`` synthetic JPEGs to ``data_root/img_dir`` and their COCO-format
    annotations (category ids 1..len(classes), as in COCO's files) to ``data_root/ann_file``;
    return the annotation file's path."""
    def samples():
        for index in range(num_images):
            image, anns = render_image(seed, split, index, image_size)
            yield f'{index + 1:012d}.jpg', image, [
                dict(ann, category_id=ann['category_id'] % len(classes)) for ann in anns]

    coco = write_coco_images(osp.join(data_root, img_dir), samples(), classes)
    path = osp.join(data_root, ann_file)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


def write_voc_split(devkit_root: str, year: str, image_set: str, classes: Sequence[str],
                    num_images: int, image_size: int, seed: int = 0,
                    split: str = 'train') -> str:
    """Write ``num_images`` synthetic JPEGs and their Pascal VOC XML annotations under
    ``devkit_root/VOC<year>`` (``JPEGImages``, ``Annotations``) and list them in
    ``ImageSets/Main/<image_set>.txt``; return that list's path. ``split`` is the synthetic
    split drawn from; image ids name the year and the set, so no two sets share one."""
    root = osp.join(devkit_root, f'VOC{year}')
    for sub in ('JPEGImages', 'Annotations', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    ids = []
    for index in range(num_images):
        image, anns = render_image(seed, split, index, image_size)
        image_id = f'{year}_{image_set}_{index:06d}'
        cv2.imwrite(osp.join(root, 'JPEGImages', f'{image_id}.jpg'), image)
        objects = ''.join(
            f'<object><name>{escape(classes[a["category_id"] % len(classes)])}</name>'
            f'<difficult>0</difficult><bndbox><xmin>{a["bbox"][0] + 1}</xmin>'
            f'<ymin>{a["bbox"][1] + 1}</ymin><xmax>{a["bbox"][0] + a["bbox"][2]}</xmax>'
            f'<ymax>{a["bbox"][1] + a["bbox"][3]}</ymax></bndbox></object>' for a in anns)
        with open(osp.join(root, 'Annotations', f'{image_id}.xml'), 'w') as f:
            f.write(f'<annotation><filename>{image_id}.jpg</filename><size>'
                    f'<width>{image_size}</width><height>{image_size}</height><depth>3</depth>'
                    f'</size>{objects}</annotation>')
        ids.append(image_id)
    path = osp.join(root, 'ImageSets', 'Main', f'{image_set}.txt')
    with open(path, 'w') as f:
        f.write('\n'.join(ids) + '\n')
    return path
