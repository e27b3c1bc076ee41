"""The synthetic detection data set ktan-det trains and benchmarks on.

Eight classes that differ by shape and by texture (never by colour: every object gets random
colours), at COCO small/medium/large sizes, with varied aspect ratios, rotation, partial occlusion,
distractor clutter, textured backgrounds and sensor noise. Two pairs of classes differ only by
texture (``disk``/``checkered_disk``, ``square``/``striped_square``), which small objects make hard:
that is where a big teacher pulls ahead of a small student.

How crowded and how hard a scene is (objects per image, their sizes, distractors, noise, whether
objects may be cut by the image border) is set by a ``scene`` (:data:`DEFAULT_SCENE`, which all
data sets generated before it existed use).

Each image is drawn from its own random generator seeded by ``(seed, split, index)``, so a split
is the same for a seed whatever its size or the order images are drawn in. Boxes are computed from
the visible pixels of each object after occlusion (exact, no anti-aliasing); objects less than
``MIN_VISIBLE_FRACTION`` visible are drawn but not annotated.
"""
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .coco_files import SPLITS, visible_boxes, write_generated_dataset

CLASSES = ('disk', 'ring', 'square', 'triangle', 'star', 'cross',
           'striped_square', 'checkered_disk')
# Appending a split to SPLITS keeps the others' images: each split's stream is seeded by its
# index there.
MIN_VISIBLE_FRACTION = 1 / 3
MIN_BOX_SIDE = 4
# What a scene holds. Ranges are inclusive; ``sizes`` is the share of objects drawn at each COCO
# size (small < 32^2 <= medium < 96^2 <= large, box area); ``object_scale`` multiplies those
# sizes' side ranges (to shrink a scene with its image); with ``inside`` every object's unrotated
# box lies within the image, otherwise the border may cut objects.
DEFAULT_SCENE = dict(objects=(1, 6), clutter=(3, 11), noise=(3.0, 12.0),
                     sizes=dict(small=0.4, medium=0.45, large=0.15), object_scale=1.0,
                     inside=False)


def resolve_scene(scene: Optional[Dict] = None) -> Dict:
    """:data:`DEFAULT_SCENE` updated by ``scene``, checked: a clear error for unknown keys or
    values out of range."""
    scene = dict(scene or {})
    unknown = set(scene) - set(DEFAULT_SCENE)
    if unknown:
        raise KeyError(f'synthetic scene: unknown keys {sorted(unknown)}; expected some of '
                       f'{sorted(DEFAULT_SCENE)}')
    resolved = dict(DEFAULT_SCENE, **scene)
    for key, least in (('objects', 1), ('clutter', 0), ('noise', 0)):
        low, high = resolved[key]
        if not least <= low <= high:
            raise ValueError(f'synthetic scene: {key}={list(resolved[key])} must be a range '
                             f'[low, high] with {least} <= low <= high')
    if not resolved['object_scale'] > 0:
        raise ValueError(f'synthetic scene: object_scale={resolved["object_scale"]} must be > 0')
    sizes = resolved['sizes']
    if set(sizes) != set(DEFAULT_SCENE['sizes']) or min(sizes.values()) < 0 or \
            abs(sum(sizes.values()) - 1) > 1e-6:
        raise ValueError(f'synthetic scene: sizes={sizes} must give each of small, medium and '
                         'large a share, the shares summing to 1')
    return resolved


def _low_frequency_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1] of shape (size, size, 3), from a coarse grid upsampled bicubically."""
    coarse = rng.random((cells, cells, 3)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC), 0, 1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(40, 200, 3).astype(np.float32)
    texture = _low_frequency_noise(rng, size, int(rng.integers(3, 12))) - 0.5
    image = base + texture * rng.uniform(40, 120)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    gx, gy = rng.uniform(-25, 25, 2)
    image += (ramp[None, :, None] * gx + ramp[:, None, None] * gy)
    return image


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]], dtype=np.float64)


def _outline(cls: str, rng: np.random.Generator) -> List[np.ndarray]:
    """Polygons of a class's shape in the square [-1, 1]^2; the first is filled, the rest cut."""
    if cls in ('disk', 'checkered_disk', 'ring'):
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        circle = np.stack([np.cos(t), np.sin(t)], 1)
        return [circle, circle * rng.uniform(0.45, 0.65)] if cls == 'ring' else [circle]
    if cls in ('square', 'striped_square'):
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)]
    if cls == 'triangle':
        return [np.array([[0, -1], [1, 1], [-1, 1]], dtype=np.float64)]
    if cls == 'star':
        t = np.linspace(-np.pi / 2, 1.5 * np.pi, 10, endpoint=False)
        radius = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.5))
        return [np.stack([np.cos(t), np.sin(t)], 1) * radius[:, None]]
    if cls == 'cross':
        a = rng.uniform(0.28, 0.4)
        return [np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1],
                          [-a, a], [-1, a], [-1, -a], [-a, -a]], dtype=np.float64)]
    raise KeyError(cls)


def _object_mask(cls: str, rng: np.random.Generator, canvas: int, pad: int,
                 center: Tuple[float, float], half_w: float, half_h: float) -> np.ndarray:
    angle = rng.uniform(-0.35, 0.35) if cls not in ('star', 'triangle') else rng.uniform(-0.6, 0.6)
    mask = np.zeros((canvas, canvas), np.uint8)
    polygons = _outline(cls, rng)
    for i, poly in enumerate(polygons):
        pts = _rotate(poly * [half_w, half_h], angle) + np.array(center) + pad
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1 if i == 0 else 0)
    return mask.astype(bool)


def _object_texture(cls: str, rng: np.random.Generator, canvas: int, side: float) -> np.ndarray:
    """Colour field (canvas, canvas, 3) of an object: shaded solid, stripes or checkers."""
    color_a = rng.uniform(0, 255, 3).astype(np.float32)
    shade = _low_frequency_noise(rng, canvas, 3)[..., :1] - 0.5
    solid = color_a + shade * 50
    if cls not in ('striped_square', 'checkered_disk'):
        return solid
    # The second colour must differ clearly from the first, or the texture vanishes.
    color_b = (color_a + rng.uniform(90, 165, 3)) % 256
    period = max(4.0, side / rng.uniform(3, 5))
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    if cls == 'striped_square':
        pattern = (np.floor(u / (period / 2)) % 2).astype(bool)
    else:
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        pattern = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(bool)
    return np.where(pattern[..., None], color_b + shade * 50, solid)


def _object_size(rng: np.random.Generator, image_size: int, sizes: Dict[str, float],
                 scale: float) -> Tuple[float, float]:
    """Half width and height for an object of a randomly chosen COCO size class, its side range
    multiplied by ``scale``."""
    size_class = rng.choice(list(sizes), p=list(sizes.values()))
    low, high = {'small': (10, 28), 'medium': (36, 88),
                 'large': (100, max(101, int(image_size * 0.9 / scale)))}[size_class]
    side = rng.uniform(low, high) * scale
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    return side * np.sqrt(aspect) / 2, side / np.sqrt(aspect) / 2


def _draw_clutter(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    """Distractors that belong to no class: jagged blobs, line segments, arcs."""
    size = image.shape[0]
    for _ in range(count):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        kind = rng.integers(3)
        if kind == 0:
            n = int(rng.integers(6, 11))
            t = np.sort(rng.uniform(0, 2 * np.pi, n))
            r = rng.uniform(3, 14) * rng.uniform(0.4, 1.0, n)
            c = rng.uniform(0, size, 2)
            pts = np.stack([np.cos(t) * r, np.sin(t) * r], 1) + c
            cv2.fillPoly(image, [np.round(pts).astype(np.int32)], color)
        elif kind == 1:
            p, q = rng.integers(0, size, (2, 2))
            cv2.line(image, tuple(int(v) for v in p), tuple(int(v) for v in q), color,
                     int(rng.integers(1, 3)))
        else:
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            axes = tuple(int(v) for v in rng.integers(5, 25, 2))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(image, c, axes, 0, start, start + float(rng.uniform(60, 200)), color, 1)


def render_image(seed: int, split: str, index: int, image_size: int = 160,
                 scene: Optional[Dict] = None) -> Tuple[np.ndarray, List[Dict]]:
    """Draw one image and its annotations.

    Args:
        seed: Data set seed.
        split: ``'train'``, ``'val'`` or ``'test'``; the splits draw from independent streams.
        index: Image index within the split.
        image_size: Side of the square image in pixels.
        scene: What the scene holds (:data:`DEFAULT_SCENE`, updated by these keys).

    Returns:
        The BGR uint8 image and a list of ``dict(category_id, bbox=[x, y, w, h], area)``
        with 0-based ``category_id`` into :data:`CLASSES`.
    """
    image, annotations, _ = render_image_with_masks(seed, split, index, image_size, scene)
    return image, annotations


def render_image_with_masks(seed: int, split: str, index: int, image_size: int = 160,
                            scene: Optional[Dict] = None
                            ) -> Tuple[np.ndarray, List[Dict], List[Tuple[np.ndarray, int]]]:
    """:func:`render_image`, plus per annotation its visible mask (image-sized, bool) and the
    pixel area of the whole object (for checking the boxes)."""
    scene = resolve_scene(scene)
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    pad = image_size // 2
    canvas = image_size + 2 * pad
    image = _background(rng, image_size)
    _draw_clutter(rng, image, int(rng.integers(scene['clutter'][0], scene['clutter'][1] + 1)))

    objects = []
    for _ in range(int(rng.integers(scene['objects'][0], scene['objects'][1] + 1))):
        cls = CLASSES[rng.integers(len(CLASSES))]
        half_w, half_h = np.minimum(
            _object_size(rng, image_size, scene['sizes'], scene['object_scale']), pad)
        if scene['inside']:
            center = rng.uniform([half_w, half_h], [image_size - half_w, image_size - half_h])
        else:
            center = rng.uniform(0, image_size, 2)
        mask = _object_mask(cls, rng, canvas, pad, center, half_w, half_h)
        texture = _object_texture(cls, rng, canvas, 2 * min(half_w, half_h))
        objects.append((cls, mask, texture))

    # Later objects occlude earlier ones; thin lines drawn on top occlude too.
    front_lines = np.zeros((canvas, canvas), np.uint8)
    for _ in range(int(rng.integers(0, 3))):
        p, q = rng.integers(pad, pad + image_size, (2, 2))
        cv2.line(front_lines, tuple(int(v) for v in p), tuple(int(v) for v in q), 1, 1)
    crop = (slice(pad, pad + image_size), slice(pad, pad + image_size))
    annotations, masks = visible_boxes([(CLASSES.index(cls), mask) for cls, mask, _ in objects],
                                       front_lines.astype(bool), crop, MIN_VISIBLE_FRACTION,
                                       MIN_BOX_SIDE)
    for _, mask, texture in objects:
        image[mask[crop]] = texture[crop][mask[crop]]

    line_color = rng.uniform(0, 255, 3).astype(np.float32)
    image[front_lines[crop].astype(bool)] = line_color
    image += rng.normal(0, rng.uniform(*scene['noise']), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), annotations, masks


def generate_dataset(out_dir: str, num_train: int = 1000, num_val: int = 200,
                     num_test: int = 0, seed: int = 0, image_size: int = 160,
                     scene: Optional[Dict] = None) -> str:
    """Write the data set in COCO format under ``out_dir``.

    Layout: ``annotations/{train,val,test}.json``, ``{train,val,test}/*.png`` and
    ``synthetic.json`` holding the parameters (no test split when ``num_test`` is 0). The files
    are written to a temporary sibling directory and moved into place at the end, so an
    interrupted run never leaves a half-written data set behind.

    Args:
        out_dir: Target directory; must not exist or be empty.
        num_train: Number of training images.
        num_val: Number of validation images (what choices are made on).
        num_test: Number of test images (what results are reported on); 0 for none.
        seed: Seed; the same seed gives byte-identical images and annotations.
        image_size: Side of the square images in pixels.
        scene: What the scenes hold (:data:`DEFAULT_SCENE`, updated by these keys); recorded
            in ``synthetic.json`` when given.

    Returns:
        ``out_dir``.
    """
    params = dict(num_train=num_train, num_val=num_val, num_test=num_test, seed=seed,
                  image_size=image_size)
    resolved = resolve_scene(scene)
    if scene is not None:
        params['scene'] = scene
    for key, least in (('num_train', 1), ('num_val', 1), ('num_test', 0), ('image_size', 64)):
        if params[key] < least:
            raise ValueError(f'synthetic data set: {key}={params[key]} is too small')
    return write_generated_dataset(
        out_dir, params, CLASSES,
        lambda split, index: render_image(seed, split, index, image_size, resolved))
