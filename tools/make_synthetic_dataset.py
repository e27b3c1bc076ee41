"""Generate a synthetic detection data set in COCO format:
OUT/annotations/{train,val,test}.json, OUT/{train,val,test}/*.png (the shapes, or the data set
a config's training set generates, e.g. the glyphs)."""
import argparse
import time
from typing import Callable, List, Optional, Tuple

from mmdet.registry import DATASETS
from mmengine.config import Config

import ktan_det  # noqa: F401  (registration)
from ktan_det.datasets import generate_dataset

# The defaults of the flags, without --config.
DEFAULTS = dict(num_train=1000, num_val=200, num_test=0, seed=0, image_size=160)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory (new or empty)')
    parser.add_argument('--config', help='generate what this config\'s training set generates, '
                        'with its parameters (sizes, seed, scene: its `generate`; e.g. '
                        'configs/synthetic/_base_/synthetic_detection.py, or '
                        'configs/glyphs/_base_/glyph_detection.py); the flags below override '
                        'them')
    # Each flag's dest is its argument of generate_dataset.
    parser.add_argument('--train', dest='num_train', type=int,
                        help=f'training images ({DEFAULTS["num_train"]})')
    parser.add_argument('--val', dest='num_val', type=int,
                        help=f'validation images ({DEFAULTS["num_val"]})')
    parser.add_argument('--test', dest='num_test', type=int,
                        help=f'test images, 0 for no test split ({DEFAULTS["num_test"]})')
    parser.add_argument('--seed', type=int,
                        help=f'seed: same seed, same files ({DEFAULTS["seed"]})')
    parser.add_argument('--image-size', type=int,
                        help=f'image side in pixels ({DEFAULTS["image_size"]})')
    return parser.parse_args(argv)


def dataset_params(args: argparse.Namespace) -> Tuple[Callable[..., str], dict]:
    """The generator (the config's training set's, else the shapes') and its arguments: the
    config's, else the defaults, each overridden by its flag when given."""
    generator, params = generate_dataset, dict(DEFAULTS)
    if args.config:
        dataset = Config.fromfile(args.config).train_dataloader.dataset
        generator = getattr(DATASETS.get(dataset.type), 'generator', None)
        if generator is None or not dataset.get('generate'):
            raise SystemExit(f'{args.config}: its training set ({dataset.type}) is not one '
                             'ktan-det generates; give a synthetic config (its train_dataloader'
                             '.dataset has `generate`)')
        params = dict(dataset.generate)
    params.update({key: getattr(args, key) for key in DEFAULTS
                   if getattr(args, key) is not None})
    return generator, params


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    generator, params = dataset_params(args)
    start = time.time()
    out = generator(args.out, **params)
    print(f'{params["num_train"]} train, {params["num_val"]} val and {params.get("num_test", 0)} '
          f'test images written to {out} in {time.time() - start:.1f} s')
    return out


if __name__ == '__main__':
    main()
