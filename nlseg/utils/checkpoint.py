"""Load mmengine/mmseg checkpoints under torch's ``weights_only=True`` default.

torch >= 2.6 loads checkpoints with ``weights_only=True``; its restricted unpickler refuses
every global that is not allowlisted, and mmengine checkpoints pickle a few: the message
hub's :class:`~mmengine.logging.HistoryBuffer`, the statistics methods it keeps (pickled as
``getattr(HistoryBuffer, 'mean')``) and the numpy arrays, scalars and dtypes it holds. We
allowlist exactly those with :func:`torch.serialization.add_safe_globals`, so
``--resume``, ``load_from``, ``tools/test.py`` and ``mmseg.apis.init_model`` work while
weights_only stays on: a checkpoint that holds any other pickled global is still refused by
torch with its own error. :func:`install_checkpoint_loader` makes mmengine's local loader say
plainly why a file was refused (a foreign global, or a truncated/corrupt file).
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import re
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


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that cannot be loaded, with what is wrong and what to do."""


_FOREIGN_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def _sibling_checkpoints(filename: str) -> list[str]:
    directory = osp.dirname(osp.abspath(filename))
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.endswith('.pth') and n != osp.basename(filename))
    except OSError:
        return []
    return names


def _line_with(text: str, word: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if word in line), lines[0] if lines else '')


def explain_checkpoint_failure(filename: str, exc: BaseException) -> str:
    """What went wrong loading ``filename`` (a refused global, or a truncated/corrupt file)
    and what to do about it."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and 'Weights only load failed' in text:
        match = _FOREIGN_GLOBAL.search(text)
        what = f'the pickled global {match.group(1)}' if match else 'a pickled global'
        return (f'checkpoint {filename} was refused: it holds {what}, which is not one of the '
                'globals mmengine/mmseg checkpoints hold. torch loads checkpoints with '
                'weights_only=True and nlseg allowlists exactly those globals, so a file '
                'holding anything else is not loaded (it could run code). A checkpoint '
                'written by mmengine, mmseg or nlseg never holds it: check where the file comes '
                'from; if you trust it, re-save its state_dict with plain tensors. '
                f'(torch: {_line_with(text, "GLOBAL")})')
    size = osp.getsize(filename) if osp.isfile(filename) else 0
    siblings = _sibling_checkpoints(filename)
    others = (f' Other checkpoints in {osp.dirname(osp.abspath(filename))}: '
              f'{", ".join(siblings)}; to resume from one, pass it with '
              '`--cfg-options load_from=PATH` together with --resume, or delete the broken '
              'file (and the `last_checkpoint` file pointing to it).' if siblings else '')
    return (f'checkpoint {filename} could not be read ({size} bytes): the file is truncated '
            'or corrupt (a copy or download that did not finish, or a run killed while '
            f'saving). torch: {type(exc).__name__}: {text.splitlines()[0] if text else ""}'
            f'.{others}')


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-file checkpoint loader (``torch.load`` with torch's default
    ``weights_only=True``), raising :class:`CheckpointLoadError` with a readable message for
    a refused global or a truncated/corrupt file. Registered in place of mmengine's function
    of the same name by :func:`install_checkpoint_loader`, so ``--resume``, ``load_from``,
    ``tools/test.py`` and ``mmseg.apis.init_model`` all use it."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        return torch.load(filename, map_location=map_location)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointLoadError(explain_checkpoint_failure(filename, exc)) from exc


def install_checkpoint_loader() -> None:
    """Make :func:`load_from_local` mmengine's loader for local paths. Idempotent."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
