"""Export the student of a KTAN run as a plain MMDetection model (config + checkpoint)."""
import copy
import os
import os.path as osp
from typing import Optional, Tuple

from mmdet.registry import HOOKS
from mmengine.config import Config

from ..datasets.synthetic_coco import SyntheticCocoDataset
from .checkpoint import load_weights, save_lean_checkpoint, weights_under

STUDENT_PREFIX = 'student.'
# Besides the model: what configs/_base_/ktan_runtime.py adds, and what points at the KTAN run.
KTAN_ONLY_KEYS = ('model_wrapper_cfg', 'disc_optim_wrapper', 'disc_param_scheduler', 'ktan_hooks',
                  'load_from', 'resume')


def is_ktan_hook(hook_type) -> bool:
    """Whether a ``custom_hooks`` type is one of ktan-det's hooks (a plain MMDetection config
    cannot build them)."""
    cls = HOOKS.get(hook_type) if isinstance(hook_type, str) else hook_type
    return getattr(cls, '__module__', '').startswith('ktan_det.')


def _plain_datasets(node) -> None:
    """Turn ktan_det's synthetic dataset type into MMDetection's CocoDataset, and its RoI
    extractor into MMDetection's (the same features, no weights of its own), in place."""
    if isinstance(node, dict):
        if node.get('type') == 'GatherRoIExtractor':
            node['type'] = 'SingleRoIExtractor'
        if node.get('type') == 'SyntheticCocoDataset':
            node['type'] = 'CocoDataset'
            node.pop('generate', None)
            node['metainfo'] = dict(classes=list(SyntheticCocoDataset.METAINFO['classes']),
                                    palette=list(SyntheticCocoDataset.METAINFO['palette']))
        for value in node.values():
            _plain_datasets(value)
    elif isinstance(node, list):
        for value in node:
            _plain_datasets(value)


def student_config(cfg: Config) -> Config:
    """The distiller config ``cfg`` as a plain MMDetection config of its student.

    The model is the student; the student's optimizer and LR schedule become the config's own;
    data, evaluation and runtime stay; everything that needs ktan_det goes.
    """
    plain = copy.deepcopy(cfg.to_dict())
    if plain['model'].get('type') != 'KTANDistiller':
        raise ValueError(f'expected a KTANDistiller config, got model type '
                         f'{plain["model"].get("type")}')
    distiller = plain['model']
    plain['model'] = distiller['student']
    if distiller.get('data_preprocessor'):
        plain['model']['data_preprocessor'] = distiller['data_preprocessor']
    for key in KTAN_ONLY_KEYS:
        plain.pop(key, None)
    imports = [m for m in plain.get('custom_imports', {}).get('imports', [])
               if m.split('.')[0] != 'ktan_det']
    if imports:
        plain['custom_imports']['imports'] = imports
    else:
        plain.pop('custom_imports', None)
    plain['custom_hooks'] = [h for h in plain.get('custom_hooks', [])
                             if not is_ktan_hook(h.get('type'))]
    optim = plain.get('optim_wrapper', {})
    if optim.get('constructor') == 'KTANOptimWrapperConstructor':
        shared = {k: v for k, v in optim.items()
                  if k not in ('constructor', 'student', 'discriminator')}
        plain['optim_wrapper'] = {**shared, **optim['student']}
    if isinstance(plain.get('param_scheduler'), dict) and 'student' in plain['param_scheduler']:
        plain['param_scheduler'] = plain['param_scheduler']['student']
    _plain_datasets(plain)
    return Config(plain)


def export_student(state_dict: dict, cfg: Config, out_dir: str, meta: Optional[dict] = None,
                   name: str = 'student.pth') -> Tuple[str, str]:
    """Write the student checkpoint ``name`` and ``student_config.py`` into ``out_dir``.

    The checkpoint holds the student's weights and plain metadata only, so stock MMDetection
    (without ktan_det) loads it under torch's safe loading: ``tools/test.py``,
    ``DetInferencer``.

    Args:
        state_dict: The distiller's state dict (keys under ``student.``).
        cfg: The distiller's config.
        out_dir: Output directory.
        meta: Metadata to store (e.g. ``dataset_meta``).
        name: File name of the checkpoint.

    Returns:
        The checkpoint and config paths.
    """
    weights = {k: v.detach().cpu() for k, v in weights_under(state_dict, STUDENT_PREFIX).items()}
    if not weights:
        raise KeyError('no student weights (keys starting with "student.") to export')
    os.makedirs(out_dir, exist_ok=True)
    config_path = osp.join(out_dir, 'student_config.py')
    student_config(cfg).dump(config_path)
    checkpoint_path = save_lean_checkpoint(weights, meta or {},
                                           osp.join(out_dir, name))
    return checkpoint_path, config_path


def export_student_checkpoint(checkpoint: str, out_dir: str, cfg: Optional[Config] = None,
                              name: str = 'student.pth') -> Tuple[str, str]:
    """:func:`export_student` from a saved distiller checkpoint; its config comes from the
    checkpoint's ``meta['cfg']`` unless ``cfg`` is given."""
    state_dict, meta = load_weights(checkpoint)
    if cfg is None:
        if 'cfg' not in meta:
            raise KeyError(f'checkpoint {checkpoint} carries no config (meta["cfg"]); pass the '
                           'config the run used')
        cfg = Config.fromstring(meta['cfg'], file_format='.py')
    export_meta = dict(dataset_meta=meta.get('dataset_meta', {}), exported_from=checkpoint,
                       iter=meta.get('iter'), epoch=meta.get('epoch'))
    return export_student(state_dict, cfg, out_dir, export_meta, name)
