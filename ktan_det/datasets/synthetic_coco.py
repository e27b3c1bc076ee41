"""MMDetection dataset for the synthetic data set, generated on first use."""
import fcntl
import json
import os
import os.path as osp
from typing import Callable, Optional

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .coco_files import PARAMS_FILE
from .synthetic import CLASSES, generate_dataset

REQUIRED_SPLITS = ('train', 'val')


def ensure_synthetic_dataset(data_root: str, generator: Callable[..., str] = generate_dataset,
                             **params) -> None:
    """Generate a synthetic data set under ``data_root`` unless it is already there.

    Safe to call from several processes at once (data loader workers, distributed ranks): one
    generates while the others wait on a lock file beside ``data_root``. A complete data set that
    was generated with other parameters is used as it is, with a note in the log.

    Args:
        data_root: Directory of the data set.
        generator: What generates it: :func:`~ktan_det.datasets.synthetic.generate_dataset`
            (the shapes) or :func:`~ktan_det.datasets.glyphs.generate_glyph_dataset`.
        **params: Arguments of ``generator`` other than ``out_dir``.
    """
    root = osp.abspath(data_root)
    params = json.loads(json.dumps(params))  # as synthetic.json holds them (tuples as lists)
    params_file = osp.join(root, PARAMS_FILE)
    os.makedirs(osp.dirname(root), exist_ok=True)
    with open(root + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if osp.isfile(params_file):
            with open(params_file) as f:
                found = json.load(f)
            wanted = {k: found.get(k) for k in params}
            if wanted != params:
                print_log(f'synthetic data set at {root} was generated with {found}; '
                          f'using it instead of generating {params}', logger='current')
            return
        if all(osp.isfile(osp.join(root, 'annotations', f'{s}.json')) for s in REQUIRED_SPLITS):
            return  # a COCO-format copy put there by hand
        print_log(f'generating the synthetic data set {params} in {root}', logger='current')
        generator(root, **params)


@DATASETS.register_module()
class SyntheticCocoDataset(CocoDataset):
    """COCO-format dataset of the synthetic benchmark.

    Args:
        generate: Parameters of :func:`~ktan_det.datasets.synthetic.generate_dataset`
            (``num_train``, ``num_val``, ``num_test``, ``seed``, ``image_size``, ``scene``);
            when given and ``data_root`` holds no data set yet, it is generated there first.
            ``None`` only reads.
        **kwargs: Arguments of :class:`mmdet.datasets.CocoDataset`.
    """

    METAINFO = dict(
        classes=CLASSES,
        palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48),
                 (145, 30, 180), (70, 240, 240), (240, 50, 230), (128, 128, 0)])
    # What `generate` calls (a subclass for another generator replaces both).
    generator = staticmethod(generate_dataset)

    def __init__(self, *args, generate: Optional[dict] = None, **kwargs) -> None:
        if generate is not None:
            data_root = kwargs.get('data_root')
            if not data_root:
                raise ValueError(f'{type(self).__name__}: `generate` needs a `data_root`')
            ensure_synthetic_dataset(data_root, self.generator, **generate)
        super().__init__(*args, **kwargs)
