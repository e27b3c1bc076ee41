"""Optimizer wrappers for the KTAN distiller: one for the student, one for the discriminator."""
import warnings
from typing import Optional

import torch.nn as nn
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from mmengine.optim import AmpOptimWrapper, DefaultOptimWrapperConstructor, OptimWrapperDict

from ..utils.wrappers import unwrap

WRAPPER_KEYS = ('student', 'discriminator')
# Top-level keys that apply to both wrappers unless a wrapper sets its own.
SHARED_KEYS = ('type', 'loss_scale', 'dtype', 'clip_grad')
# Shared keys only an AMP wrapper takes (OptimWrapper would refuse them).
AMP_ONLY_KEYS = ('loss_scale', 'dtype')


def _is_amp(wrapper_type) -> bool:
    cls = OPTIM_WRAPPERS.get(wrapper_type) if isinstance(wrapper_type, str) else wrapper_type
    return isinstance(cls, type) and issubclass(cls, AmpOptimWrapper)


class KTANOptimWrapperDict(OptimWrapperDict):
    """:class:`OptimWrapperDict` that also restores the student wrapper's gradient-accumulation
    count on resume (MMEngine's does nothing there): the student takes one backward per
    iteration, so its count is the iteration; and that names the fix when a wrapper runs its
    own training step on the distiller."""

    def initialize_count_status(self, model: nn.Module, cur_iter: int, max_iters: int) -> None:
        self['student'].initialize_count_status(unwrap(model).student, cur_iter, max_iters)

    def optim_context(self, model: nn.Module):
        """Called on the whole dict only by a wrapper that runs its own training step:
        MMEngine's default MMDistributedDataParallel, which never calls the distiller's."""
        raise RuntimeError(
            'KTANDistiller trains through its own train_step, which the default '
            f'{type(model).__name__} does not call: set '
            "model_wrapper_cfg=dict(type='MMSeparateDistributedDataParallel') (as "
            'configs/_base_/ktan_runtime.py does)')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class KTANOptimWrapperConstructor:
    """Build an :class:`OptimWrapperDict` for :class:`~ktan_det.models.KTANDistiller`.

    ``'student'`` optimises the student and the T2S layers (which only receive gradients during
    the TGN stage); ``'discriminator'`` optimises the discriminator. The teacher is never in an
    optimizer. Each wrapper is built by MMEngine's default constructor from its own config, so
    each has its own optimizer, gradient clipping and ``paramwise_cfg``; learning-rate schedules
    go per wrapper too (``param_scheduler=dict(student=[...], discriminator=[...])``).

    Example::

        optim_wrapper = dict(
            constructor='KTANOptimWrapperConstructor',
            type='OptimWrapper',  # default for both; --amp makes it AmpOptimWrapper
            student=dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9)),
            discriminator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))))

    Top-level ``type``, ``loss_scale``, ``dtype`` and ``clip_grad`` are defaults for both
    wrappers. Gradient accumulation (``accumulative_counts``) is for the student only.
    MMDetection's ``tools/train.py --amp`` sets the top-level type to ``AmpOptimWrapper``: both
    wrappers then use AMP, unless one names its own non-AMP type (e.g. ``OptimWrapper`` inherited
    from a ``_base_`` schedule), which then takes none of the AMP-only keys.

    Args:
        optim_wrapper_cfg: The ``optim_wrapper`` config without ``constructor``.
        paramwise_cfg: Must be ``None``; give ``paramwise_cfg`` inside each wrapper's config.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('KTANOptimWrapperConstructor: put paramwise_cfg inside '
                             'optim_wrapper.student or optim_wrapper.discriminator')
        cfg = dict(optim_wrapper_cfg)
        unknown = set(cfg) - set(WRAPPER_KEYS) - set(SHARED_KEYS)
        if unknown:
            raise ValueError(f'KTANOptimWrapperConstructor: unknown optim_wrapper keys '
                             f'{sorted(unknown)}; expected {WRAPPER_KEYS} and shared '
                             f'{SHARED_KEYS}')
        if 'student' not in cfg:
            raise ValueError("KTANOptimWrapperConstructor: optim_wrapper needs a 'student' entry")
        shared = {k: cfg[k] for k in SHARED_KEYS if k in cfg}
        self.wrapper_cfgs = {}
        for key in WRAPPER_KEYS:
            if key in cfg:
                wrapper_cfg = {**shared, **cfg[key]}
                if not _is_amp(wrapper_cfg.get('type', 'OptimWrapper')):
                    if _is_amp(shared.get('type')):
                        # It works (the distiller casts the discriminator's inputs to
                        # float32), but is rarely what a user of --amp meant.
                        warnings.warn(f'KTANOptimWrapperConstructor: optim_wrapper.{key} names '
                                      f'type={cfg[key]["type"]!r}, so it runs in float32 although '
                                      'the top-level type (--amp) is AMP; leave its type out to '
                                      'use AMP', stacklevel=2)
                    for amp_key in set(AMP_ONLY_KEYS) - set(cfg[key]):
                        wrapper_cfg.pop(amp_key, None)
                if 'optimizer' not in wrapper_cfg:
                    raise ValueError(f'KTANOptimWrapperConstructor: optim_wrapper.{key} needs '
                                     'an optimizer')
                self.wrapper_cfgs[key] = wrapper_cfg
        if self.wrapper_cfgs.get('discriminator', {}).get('accumulative_counts', 1) != 1:
            raise ValueError('KTANOptimWrapperConstructor: gradient accumulation is supported for '
                             'the student only; set accumulative_counts inside '
                             'optim_wrapper.student')

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = unwrap(model)
        modules = {'student': nn.ModuleDict(dict(student=unwrap(model.student),
                                                 t2s=unwrap(model.t2s)))}
        if model.discriminator is not None:
            if 'discriminator' not in self.wrapper_cfgs:
                raise ValueError(
                    'the model trains a discriminator (model.loss_adv) but optim_wrapper has no '
                    "'discriminator' entry; add optim_wrapper.discriminator=dict(optimizer=...) "
                    'or set model.loss_adv=None')
            modules['discriminator'] = unwrap(model.discriminator)
        wrappers = {}
        for key, module in modules.items():
            wrapper_cfg = dict(self.wrapper_cfgs[key])
            paramwise_cfg = wrapper_cfg.pop('paramwise_cfg', None)
            wrappers[key] = DefaultOptimWrapperConstructor(wrapper_cfg, paramwise_cfg)(module)
        return KTANOptimWrapperDict(**wrappers)
