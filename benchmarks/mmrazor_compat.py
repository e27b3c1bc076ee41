"""Import MMRazor 1.0.0 (the benchmarks' peer) on torch 2.14.

MMRazor 1.0.0's quantization backend tables (``mmrazor.structures.quantization.backend_config``)
use ``torch.ao`` internals that newer torch removed, which breaks ``import mmrazor.models``
although distillation never touches quantization. Importing this module first puts an empty
stand-in for that one module in ``sys.modules``; nothing on MMRazor's distillation path is
changed. Benchmark code only: ktan-det itself never imports MMRazor.
"""
import sys
import types

BACKEND_CONFIG = 'mmrazor.structures.quantization.backend_config'


def _unavailable(*args, **kwargs):
    raise NotImplementedError('MMRazor quantization backends are stubbed out for the '
                              'ktan-det benchmarks (torch.ao internals differ on this torch)')


def install_backend_config_stand_in() -> None:
    if BACKEND_CONFIG in sys.modules:
        return
    stand_in = types.ModuleType(BACKEND_CONFIG)
    stand_in.BackendConfigs = {}
    for name in ('native', 'academic', 'openvino', 'tensorrt'):
        setattr(stand_in, f'get_{name}_backend_config', _unavailable)
        setattr(stand_in, f'get_{name}_backend_config_dict', _unavailable)
    stand_in.__all__ = [n for n in vars(stand_in) if not n.startswith('_')]
    sys.modules[BACKEND_CONFIG] = stand_in


install_backend_config_stand_in()
