"""Generate the synthetic detection data set in COCO format:
OUT/annotations/{train,val,test}.json, OUT/{train,val,test}/*.png."""
import argparse
import time
from typing import List, Optional

from ktan_det.datasets import generate_dataset


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output directory (new or empty)')
    parser.add_argument('--train', type=int, default=1000, help='training images')
    parser.add_argument('--val', type=int, default=200, help='validation images')
    parser.add_argument('--test', type=int, default=0, help='test images (0: no test split)')
    parser.add_argument('--seed', type=int, default=0, help='seed (same seed, same files)')
    parser.add_argument('--image-size', type=int, default=160, help='image side in pixels')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    start = time.time()
    out = generate_dataset(args.out, num_train=args.train, num_val=args.val,
                           num_test=args.test, seed=args.seed,
                           image_size=args.image_size)
    print(f'{args.train} train, {args.val} val and {args.test} test images written to {out} in '
          f'{time.time() - start:.1f} s')
    return out


if __name__ == '__main__':
    main()
