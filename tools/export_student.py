"""Export the student of a saved KTAN distiller checkpoint as a plain MMDetection model:
OUT_DIR/student.pth (student weights, plain metadata) and OUT_DIR/student_config.py, which
stock MMDetection loads without ktan_det (tools/test.py, DetInferencer)."""
import argparse
from typing import List, Optional, Tuple

from mmengine.config import Config

import ktan_det  # noqa: F401  (safe loading of MMEngine checkpoints)
from ktan_det.utils.export import export_student_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export the student of a KTAN checkpoint')
    parser.add_argument('checkpoint', help='distiller checkpoint saved during KTAN training')
    parser.add_argument('out_dir', help='directory for student.pth and student_config.py')
    parser.add_argument('--config', help='the run\'s config, if the checkpoint carries none')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Tuple[str, str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config) if args.config else None
    checkpoint, config = export_student_checkpoint(args.checkpoint, args.out_dir, cfg)
    print(f'student weights: {checkpoint}\nstudent config:  {config}')
    return checkpoint, config


if __name__ == '__main__':
    main()
