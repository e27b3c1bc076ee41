"""Generate the synthetic detection data set in COCO format:
OUT/annotations/{train,val,test}.json, OUT/{train,val,test}/*.png."""
import argparse
import time
from typing import List, Optional

from mmengine.config import Config

from ktan_det.datasets import generate_dataset

# The defaults of the flags, without --config.
DEFAULTS = dict(num_train=1000, num_val=200, num_test=0, seed=0, image_size=160)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory (new or empty)')
    parser.add_argument('--config', help="take every parameter (sizes, seed, scene) from this "
                        "config's `synthetic` (e.g. configs/synthetic/_base_/"
                        "synthetic_detection.py); the flags below override them")
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


def dataset_params(args: argparse.Namespace) -> dict:
    """The arguments of :func:`generate_dataset`: the config's, else the defaults, each
    overridden by its flag when given."""
    params = dict(Config.fromfile(args.config).synthetic) if args.config else dict(DEFAULTS)
    params.update({key: getattr(args, key) for key in DEFAULTS
                   if getattr(args, key) is not None})
    return params


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    params = dataset_params(args)
    start = time.time()
    out = generate_dataset(args.out, **params)
    print(f'{params["num_train"]} train, {params["num_val"]} val and {params.get("num_test", 0)} '
          f'test images written to {out} in {time.time() - start:.1f} s')
    return out


if __name__ == '__main__':
    main()
