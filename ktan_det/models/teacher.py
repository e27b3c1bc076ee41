"""The frozen teacher: built from its config, loaded strictly from its checkpoint, kept out of
the distiller's checkpoints; with errors that say what is wrong."""
import os.path as osp
from typing import Optional, Tuple, Union

import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.runner.checkpoint import _load_checkpoint

from .setup_checks import DistillationSetupError

MAX_LISTED_KEYS = 8


class TeacherCheckpointError(RuntimeError):
    """The teacher checkpoint is missing, unreadable or does not fit the teacher config."""


def require_teacher_ckpt(teacher_ckpt: Optional[str],
                         teacher_cfg_path: Optional[str] = None) -> None:
    """Raise if there is no teacher checkpoint (``model.teacher_ckpt=None``): KTAN training
    needs a trained teacher."""
    if teacher_ckpt is None:
        raise DistillationSetupError(
            'the teacher has no checkpoint (model.teacher_ckpt=None) and KTAN training needs '
            'a trained one: train it (python tools/train.py '
            f'{teacher_cfg_path or "TEACHER_CONFIG"}) or bring one, then pass '
            '--cfg-options model.teacher_ckpt=PATH')


def teacher_model_cfg(teacher: Union[str, dict]) -> Tuple[ConfigDict, Optional[str]]:
    """The teacher's model config and, when given as a file, its path.

    Args:
        teacher: A config file (a path or an ``mmdet::`` name, whose ``model`` is used) or a
            model config dict.
    """
    if isinstance(teacher, str):
        # `pkg::path` names resolve the way MMEngine resolves them in `_base_`.
        path = Config._get_cfg_path(teacher, '')[0] if '::' in teacher else teacher
        return Config.fromfile(path).model, teacher
    if isinstance(teacher, dict):
        return ConfigDict(teacher), None
    raise TypeError(f'teacher must be a config path or a model dict, got {type(teacher)}')


def is_remote_path(path: str) -> bool:
    """Whether MMEngine loads ``path`` from the network (a URL or a model-zoo scheme)."""
    return path.startswith(('http://', 'https://', 's3://', 'open-mmlab://', 'torchvision://',
                            'modelzoo://', 'mmcls://', 'pavi://'))


def _listed(keys) -> str:
    keys = sorted(keys)
    more = f' and {len(keys) - MAX_LISTED_KEYS} more' if len(keys) > MAX_LISTED_KEYS else ''
    return ', '.join(keys[:MAX_LISTED_KEYS]) + more


def read_teacher_checkpoint(path: str) -> Tuple[dict, dict]:
    """The state dict and the meta of a detector checkpoint (local path or URL), loaded safely
    on the CPU, with errors that name the file."""
    if not is_remote_path(path) and not osp.isfile(path):
        raise TeacherCheckpointError(
            f'teacher checkpoint {path} does not exist: train a teacher first (see README) or '
            'point model.teacher_ckpt at one (--cfg-options model.teacher_ckpt=PATH)')
    try:
        checkpoint = _load_checkpoint(path, map_location='cpu')
    except Exception as error:  # corrupt file, refused pickle, network: all mean "unreadable"
        raise TeacherCheckpointError(
            f'teacher checkpoint {path} could not be read: {type(error).__name__}: {error}'
        ) from error
    if not isinstance(checkpoint, dict):
        raise TeacherCheckpointError(f'teacher checkpoint {path} holds a {type(checkpoint)}, '
                                     'not a state dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    # Checkpoints saved from a DDP-wrapped model carry a `module.` prefix.
    state_dict = {(k[7:] if k.startswith('module.') else k): v for k, v in state_dict.items()}
    return state_dict, checkpoint.get('meta') or {}


def check_state_dict_matches(model: nn.Module, state_dict: dict, path: str) -> None:
    """Raise :class:`TeacherCheckpointError` naming every key or shape that differs."""
    expected = model.state_dict()
    missing = expected.keys() - state_dict.keys()
    unexpected = state_dict.keys() - expected.keys()
    mismatched = [f'{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}'
                  for k, v in expected.items()
                  if k in state_dict and hasattr(state_dict[k], 'shape')
                  and state_dict[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f'missing keys: {_listed(missing)}')
    if unexpected:
        problems.append(f'unexpected keys: {_listed(unexpected)}')
    if mismatched:
        problems.append(f'shape mismatches (checkpoint vs config): {_listed(mismatched)}')
    if problems:
        raise TeacherCheckpointError(
            f'teacher checkpoint {path} does not match the teacher config: '
            + '; '.join(problems) + '. Does model.teacher name the config this checkpoint was '
            'trained with?')


def build_frozen_teacher(model_cfg: ConfigDict, checkpoint: Optional[str]) -> nn.Module:
    """Build the teacher, load ``checkpoint`` strictly and freeze it.

    The loaded teacher is marked initialised so that the runner's ``init_weights()`` call on the
    distiller leaves its weights alone. Without a checkpoint the teacher keeps its random
    initialisation (for tests and for tools that only run the student).
    """
    teacher = MODELS.build(model_cfg)
    if checkpoint is not None:
        state_dict, _ = read_teacher_checkpoint(checkpoint)
        check_state_dict_matches(teacher, state_dict, checkpoint)
        teacher.load_state_dict(state_dict, strict=True)
        teacher._is_init = True
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher


def drop_teacher_weights(module: nn.Module, state_dict: dict, prefix: str,
                         local_metadata: dict) -> None:
    """State-dict hook of a model with a ``teacher`` child: its checkpoints hold no teacher."""
    for key in [k for k in state_dict if k.startswith(prefix + 'teacher.')]:
        del state_dict[key]
