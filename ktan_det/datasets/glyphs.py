"""A second synthetic data set, never used for any choice: digits on printed pages.

It differs from the shapes data set (:mod:`.synthetic`) in what the objects are (ten digit
classes drawn as text strokes in six fonts, upright or italic, rather than eight filled shapes),
in image size (80 pixels by default, against the synthetic benchmark's 96) and in what
confuses a detector (distractor letters drawn like the digits, on ruled paper with ink blots,
rather than blobs and arcs on smooth textures).
Its pairs that differ in a few strokes (``three``/``eight``, ``one``/``seven``,
``six``/``eight``) at small sizes are where a teacher's capacity should tell.

As for the shapes, each image is drawn from its own random generator seeded by
``(seed, split, index)`` and boxes are computed from the visible pixels of each digit after
occlusion (exact: masks are drawn without anti-aliasing and rotated by nearest neighbour).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmdet.registry import DATASETS

from .coco_files import PARAMS_FILE, SPLITS, visible_boxes, write_generated_dataset
from .synthetic_coco import SyntheticCocoDataset

# What synthetic.json names this generator.
GENERATOR_NAME = 'glyphs'
CLASSES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine')
# Letters unlike any digit (no O, I, L, S, B, Z, G, Q, D): distractors, never annotated.
DISTRACTORS = 'ACEFHKMNPRTUVWXY'
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_PLAIN)
MIN_VISIBLE_FRACTION = 1 / 3
MIN_BOX_SIDE = 4
# What a page holds (ranges inclusive): digits, distractor letters, ink blots, sensor noise,
# and the range of a glyph's height in pixels.
DEFAULT_GLYPH_SCENE = dict(digits=(2, 7), letters=(1, 5), blots=(0, 3), noise=(2.0, 8.0),
                           heights=(8, 40))


def resolve_glyph_scene(scene: Optional[Dict] = None) -> Dict:
    """:data:`DEFAULT_GLYPH_SCENE` updated by ``scene``, checked."""
    scene = dict(scene or {})
    unknown = set(scene) - set(DEFAULT_GLYPH_SCENE)
    if unknown:
        raise KeyError(f'glyph scene: unknown keys {sorted(unknown)}; expected some of '
                       f'{sorted(DEFAULT_GLYPH_SCENE)}')
    resolved = dict(DEFAULT_GLYPH_SCENE, **scene)
    for key, least in (('digits', 1), ('letters', 0), ('blots', 0), ('noise', 0),
                       ('heights', MIN_BOX_SIDE + 2)):
        low, high = resolved[key]
        if not least <= low <= high:
            raise ValueError(f'glyph scene: {key}={list(resolved[key])} must be a range '
                             f'[low, high] with {least} <= low <= high')
    return resolved


def _paper(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light or dark page with ruled lines and a soft shading."""
    base = rng.uniform(150, 235, 3) if rng.random() < 0.75 else rng.uniform(20, 90, 3)
    image = np.broadcast_to(base.astype(np.float32), (size, size, 3)).copy()
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    image += ramp[None, :, None] * rng.uniform(-20, 20) + ramp[:, None, None] * rng.uniform(-20,
                                                                                           20)
    spacing = int(rng.integers(9, 20))
    line = (base + rng.uniform(-70, 70, 3)).clip(0, 255)
    for y in range(int(rng.integers(0, spacing)), size, spacing):
        image[y] = line
    if rng.random() < 0.5:  # squared paper
        for x in range(int(rng.integers(0, spacing)), size, spacing):
            image[:, x] = line
    return image


def _glyph_mask(char: str, rng: np.random.Generator, canvas: int, pad: int,
                image_size: int, heights: Tuple[int, int]) -> np.ndarray:
    """The canvas mask of one character at a random font, size, stroke, slant and angle."""
    font = int(FONTS[rng.integers(len(FONTS))]) | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    height = rng.uniform(*heights)
    (_, unit_height), _ = cv2.getTextSize(char, font, 1.0, 1)
    scale = height / unit_height
    thickness = max(1, int(round(height * rng.uniform(0.06, 0.14))))
    (width, text_height), _ = cv2.getTextSize(char, font, scale, thickness)
    x = rng.uniform(0, max(1, image_size - width)) + pad
    y = rng.uniform(text_height, image_size) + pad  # putText's origin is the baseline
    mask = np.zeros((canvas, canvas), np.uint8)
    cv2.putText(mask, char, (int(x), int(y)), font, scale, 1, thickness, cv2.LINE_8)
    center = (float(x + width / 2), float(y - text_height / 2))
    rotation = cv2.getRotationMatrix2D(center, float(rng.uniform(-20, 20)), 1.0)
    return cv2.warpAffine(mask, rotation, (canvas, canvas), flags=cv2.INTER_NEAREST).astype(bool)


def render_glyph_image(seed: int, split: str, index: int, image_size: int = 80,
                       scene: Optional[Dict] = None
                       ) -> Tuple[np.ndarray, List[Dict], List[Tuple[np.ndarray, int]]]:
    """Draw one page and its annotations.

    Args:
        seed: Data set seed.
        split: ``'train'``, ``'val'`` or ``'test'``; the splits draw from independent streams.
        index: Image index within the split.
        image_size: Side of the square image in pixels.
        scene: What the page holds (:data:`DEFAULT_GLYPH_SCENE`, updated by these keys).

    Returns:
        The BGR uint8 image; a list of ``dict(category_id, bbox=[x, y, w, h], area)`` with
        0-based ``category_id`` into :data:`CLASSES`; per annotation its visible mask
        (image-sized, bool) and the pixel area of the whole digit.
    """
    scene = resolve_glyph_scene(scene)
    rng = np.random.default_rng([seed, SPLITS.index(split), index, 1])  # 1: the glyphs' stream
    pad = image_size // 2
    canvas = image_size + 2 * pad
    crop = (slice(pad, pad + image_size), slice(pad, pad + image_size))
    image = _paper(rng, image_size)
    ink = np.zeros((canvas, canvas, 3), np.float32)
    inked = np.zeros((canvas, canvas), bool)
    digits = []
    # Letters first, digits over them; either ink colour may be dark or bright.
    chars = [(None, DISTRACTORS[rng.integers(len(DISTRACTORS))])
             for _ in range(int(rng.integers(scene['letters'][0], scene['letters'][1] + 1)))]
    chars += [(int(c), str(c)) for c in rng.integers(
        0, len(CLASSES), int(rng.integers(scene['digits'][0], scene['digits'][1] + 1)))]
    for category_id, char in chars:
        mask = _glyph_mask(char, rng, canvas, pad, image_size, scene['heights'])
        ink[mask] = rng.uniform(0, 255, 3)
        inked |= mask
        if category_id is not None:
            digits.append((category_id, mask))
    blots = np.zeros((canvas, canvas), np.uint8)
    for _ in range(int(rng.integers(scene['blots'][0], scene['blots'][1] + 1))):
        center = tuple(int(v) for v in rng.integers(pad, pad + image_size, 2))
        axes = tuple(int(v) for v in rng.integers(2, max(3, image_size // 10), 2))
        cv2.ellipse(blots, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    blots = blots.astype(bool)
    annotations, masks = visible_boxes(digits, blots, crop, MIN_VISIBLE_FRACTION, MIN_BOX_SIDE)
    image[inked[crop]] = ink[crop][inked[crop]]
    image[blots[crop]] = rng.uniform(0, 80, 3)
    image += rng.normal(0, rng.uniform(*scene['noise']), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), annotations, masks


def generate_glyph_dataset(out_dir: str, num_train: int = 1000, num_val: int = 200,
                           num_test: int = 0, seed: int = 0, image_size: int = 80,
                           scene: Optional[Dict] = None) -> str:
    """Write the glyph data set in COCO format under ``out_dir``, laid out as
    :func:`~ktan_det.datasets.synthetic.generate_dataset` lays out the shapes (its parameters,
    with ``generator='glyphs'``, in ``synthetic.json``); the same seed gives byte-identical
    files."""
    params = dict(generator=GENERATOR_NAME, num_train=num_train, num_val=num_val,
                  num_test=num_test, seed=seed, image_size=image_size)
    resolved = resolve_glyph_scene(scene)
    if scene is not None:
        params['scene'] = scene
    for key, least in (('num_train', 1), ('num_val', 1), ('num_test', 0), ('image_size', 48)):
        if params[key] < least:
            raise ValueError(f'glyph data set: {key}={params[key]} is too small')
    if resolved['heights'][1] > image_size:
        raise ValueError(f'glyph data set: heights={list(resolved["heights"])} must fit the '
                         f'{image_size}-pixel image')
    return write_generated_dataset(
        out_dir, params, CLASSES,
        lambda split, index: render_glyph_image(seed, split, index, image_size, resolved)[:2])


@DATASETS.register_module()
class SyntheticGlyphsDataset(SyntheticCocoDataset):
    """COCO-format dataset of the glyph data set; ``generate`` takes the parameters of
    :func:`generate_glyph_dataset`."""

    METAINFO = dict(
        classes=CLASSES,
        palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180),
                 (70, 240, 240), (240, 50, 230), (128, 128, 0), (0, 0, 128), (170, 110, 40)])
    generator = staticmethod(generate_glyph_dataset)

    def __init__(self, *args, **kwargs) -> None:
        params_file = osp.join(kwargs.get('data_root') or '', PARAMS_FILE)
        if osp.isfile(params_file):
            with open(params_file) as f:
                found = json.load(f).get('generator', 'shapes')
            if found != GENERATOR_NAME:
                raise ValueError(f'{osp.dirname(osp.abspath(params_file))} holds the {found} '
                                 f'data set, not the {GENERATOR_NAME}: point data_root at '
                                 'another directory')
        super().__init__(*args, **kwargs)
