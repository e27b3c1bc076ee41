"""Write generated images and their boxes as COCO-format data sets.

What the generators (:mod:`.synthetic`, :mod:`.glyphs`) and the stand-ins for real data sets
(:mod:`.stand_ins`) share: a sample is ``(file name, BGR image, annotations)``, an annotation
``dict(category_id, bbox=[x, y, w, h], area)`` with a 0-based ``category_id`` into the classes.
"""
import json
import os
import os.path as osp
import shutil
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

import cv2
import numpy as np

SPLITS = ('train', 'val', 'test')
PARAMS_FILE = 'synthetic.json'
Sample = Tuple[str, np.ndarray, List[Dict]]


def write_coco_images(root: str, samples: Iterable[Sample], classes: Sequence[str]) -> Dict:
    """Write each sample's image under ``root`` (PNG with fast compression, or as the file
    name's extension says) and return the COCO dict of them all (ids from 1, as COCO's)."""
    images, annotations = [], []
    for image_id, (file_name, image, anns) in enumerate(samples, 1):
        path = osp.join(root, file_name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if file_name.endswith('.png') else []
        cv2.imwrite(path, image, params)
        height, width = image.shape[:2]
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
        for ann in anns:
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id,
                                    category_id=ann['category_id'] + 1, bbox=ann['bbox'],
                                    area=ann['area'], iscrowd=0))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(classes)]
    return dict(images=images, annotations=annotations, categories=categories)


def write_generated_dataset(out_dir: str, params: Dict, classes: Sequence[str],
                            render: Callable[[str, int], Tuple[np.ndarray, List[Dict]]]) -> str:
    """Write a generated data set under ``out_dir``: ``annotations/<split>.json`` and
    ``<split>/<index>.png`` for each split with ``params['num_<split>'] > 0``, drawn by
    ``render(split, index)``, and ``params`` in :data:`PARAMS_FILE`.

    The files are written to a temporary sibling directory and moved into place at the end, so
    an interrupted run never leaves a half-written data set behind. ``out_dir`` must not exist
    or be empty.
    """
    if osp.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(f'synthetic data set: {out_dir} exists and is not empty; '
                              'choose another --out or remove it')
    out_dir = osp.abspath(out_dir)
    tmp_dir = f'{out_dir}.partial-{os.getpid()}'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        os.makedirs(osp.join(tmp_dir, 'annotations'))
        for split in (s for s in SPLITS if params.get(f'num_{s}', 0) > 0):
            samples = ((f'{split}/{index:06d}.png', *render(split, index))
                       for index in range(params[f'num_{split}']))
            coco = write_coco_images(tmp_dir, samples, classes)
            with open(osp.join(tmp_dir, 'annotations', f'{split}.json'), 'w') as f:
                json.dump(coco, f)
        with open(osp.join(tmp_dir, PARAMS_FILE), 'w') as f:
            json.dump(params, f, indent=2)
        if osp.isdir(out_dir):
            os.rmdir(out_dir)
        os.replace(tmp_dir, out_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_dir


def visible_boxes(masks: Sequence[Tuple[int, np.ndarray]], occluders: np.ndarray,
                  crop: Tuple[slice, slice], min_visible: float, min_side: int
                  ) -> Tuple[List[Dict], List[Tuple[np.ndarray, int]]]:
    """The annotations of objects drawn in order (later ones in front), from their visible
    pixels: each object's mask less what covers it (``occluders`` and the objects drawn after
    it), inside the image (``crop`` of the canvas the masks are drawn on). Objects less than
    ``min_visible`` visible, or whose box has a side under ``min_side``, are not annotated.

    Args:
        masks: ``(category_id, mask)`` per object, in drawing order, masks on the canvas.
        occluders: Canvas mask of what is drawn over every object.
        crop: The image's slices of the canvas.
        min_visible: Least visible share of an annotated object's pixels.
        min_side: Least side of an annotated box, in pixels.

    Returns:
        The annotations, in drawing order, and per annotation its visible mask (image-sized)
        and the pixel area of the whole object.
    """
    inside = np.zeros(occluders.shape, bool)
    inside[crop] = True
    occluded = occluders.copy()
    annotations, visible_masks = [], []
    for category_id, mask in reversed(masks):
        visible = mask & inside & ~occluded
        full_area = mask.sum()
        occluded |= mask
        if full_area == 0 or visible.sum() < min_visible * full_area:
            continue
        ys, xs = np.nonzero(visible[crop])
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        if min(x2 - x1, y2 - y1) < min_side:
            continue
        w, h = int(x2 - x1), int(y2 - y1)
        annotations.append(dict(category_id=category_id, bbox=[int(x1), int(y1), w, h],
                                area=w * h))
        visible_masks.append((visible[crop], int(full_area)))
    return annotations[::-1], visible_masks[::-1]
