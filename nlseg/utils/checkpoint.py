"""Load mmengine/mmseg checkpoints under torch's ``weights_only=True`` default.

torch >= 2.6 loads checkpoints with ``weights_only=True``; its restricted unpickler refuses
every global that is not allowlisted, and mmengine checkpoints pickle a few: the message
hub's :class:`~mmengine.logging.HistoryBuffer`, the statistics methods it keeps (pickled as
``getattr(HistoryBuffer, 'mean')``) and the numpy arrays, scalars and dtypes it holds. We
allowlist exactly those with :func:`torch.serialization.add_safe_globals`, so
``--resume``, ``load_from``, ``tools/test.py`` and ``mmseg.apis.init_model`` work while
weights_only stays on: a checkpoint that holds any other pickled global is still refused by
torch with its own error.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

# numpy moved ``numpy.core`` to ``numpy._core`` in 2.0; pickles name the module that wrote
# them, so both spellings must resolve to the same (safe) callables.
_NUMPY_CORE_ALIASES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def _numpy_dtype_classes() -> list[type]:
    """The concrete dtype classes (``numpy.dtypes.Float64DType`` ...) that numpy >= 1.25
    pickles for every dtype of an array or scalar."""
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is None:  # numpy < 1.25 pickles plain ``numpy.dtype``
        return []
    return [getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and isinstance(getattr(dtypes, name), type)]


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling: resolves only the statistics
    methods of :class:`~mmengine.logging.HistoryBuffer` (``min``, ``max``, ``mean``,
    ``current``...) that its pickled state refers to, and refuses everything else. The real
    ``getattr`` is never allowlisted (it would reach any attribute of any loaded object)."""
    import pickle

    from mmengine.logging import HistoryBuffer
    # HistoryBuffer fills its class-level registry lazily (on first instantiation, plus any
    # method added with ``register_statistics``): accept the built-in ones in any case.
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer statistics '
        f'methods {sorted(allowed)} are allowed')


def mmengine_checkpoint_globals() -> list[Any]:
    """Every global that an mmengine/mmseg checkpoint pickles, in the form accepted by
    :func:`torch.serialization.add_safe_globals` (an object, or ``(object, qualified name)``
    for names under which older numpy versions pickled the same object)."""
    from mmengine.logging import HistoryBuffer

    multiarray = getattr(np, '_core', getattr(np, 'core', None)).multiarray
    entries: list[Any] = [HistoryBuffer, np.ndarray, np.dtype,
                          (history_buffer_getattr, 'builtins.getattr')]
    for module in _NUMPY_CORE_ALIASES:
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    entries.extend(_numpy_dtype_classes())
    return entries


def allow_mmengine_checkpoint_globals() -> None:
    """Allowlist the globals of :func:`mmengine_checkpoint_globals` for
    ``torch.load(weights_only=True)``. Idempotent; a no-op on torch without
    ``add_safe_globals`` (< 2.4, which loads with weights_only=False by default anyway)."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return
    add_safe_globals(mmengine_checkpoint_globals())
