"""Let torch's safe loading (``weights_only=True``, torch >= 2.6's default) read MMEngine
checkpoints, by allow-listing exactly what they hold and nothing else.

MMEngine 0.10 calls ``torch.load`` without ``weights_only``; its checkpoints carry, besides
tensors, the message hub's ``HistoryBuffer`` objects (numpy arrays of logged scalars, and
references to the buffer's statistics methods pickled as ``getattr(HistoryBuffer, 'mean')``).
Safe loading refuses those by default, so resuming fails. We allow-list the buffer class, plain
numeric numpy arrays and scalars, and a ``getattr`` that resolves HistoryBuffer's statistics
methods only. Anything else (an arbitrary pickled object) is still refused before it can run.
"""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

# Plain numeric dtypes only: an object array could smuggle arbitrary Python objects.
_NUMPY_DTYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                 np.uint32, np.uint64, np.float16, np.float32, np.float64)


def _history_buffer_method(owner, name: str):
    """``getattr`` restricted to the statistics methods of :class:`HistoryBuffer`."""
    # The defaults are registered lazily (by the first buffer built), so name them as well.
    allowed = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); safe loading only allows '
        'HistoryBuffer statistics methods')


def checkpoint_safe_globals() -> list:
    """The allow-list, as accepted by :func:`torch.serialization.add_safe_globals`.

    Names are given explicitly because pickles name a global by the module path of the numpy
    release that wrote them (``numpy.core`` in 1.x, ``numpy._core`` in 2.x).
    """
    from numpy.core import multiarray
    globals_ = [HistoryBuffer, np.ndarray, np.dtype,
                (_history_buffer_method, 'builtins.getattr')]
    for prefix in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        globals_ += [(multiarray._reconstruct, f'{prefix}._reconstruct'),
                     (multiarray.scalar, f'{prefix}.scalar')]
    globals_ += [type(np.dtype(t)) for t in _NUMPY_DTYPES]
    return globals_


def register_checkpoint_safe_globals() -> None:
    """Allow-list MMEngine checkpoint contents for every ``torch.load`` in this process."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
