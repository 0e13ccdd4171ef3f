"""``impl='auto'``: pick the faster of the two exact paths of a kernel, from measured crossovers.

Every block with a fast path has a dense path (it materialises the N x M affinity) and an
efficient one (fused attention, associativity or query chunks, never N x M); both are exact
and tested equal. Which one is faster depends on the size: for a small affinity the dense
path's few large matrix products beat the efficient path's fixed costs (padding, chunk loops,
two extra products), for a large one the N x M memory traffic of the dense path loses. This
module decides from a table of crossover sizes MEASURED by ``tools/analysis/calibrate_impl.py``
(:mod:`nlseg.analysis.impl_calibration`) on the machine named in the table's ``measured_on``
(not from a cost model). The table is package data, ``nlseg/ops/kernels/crossovers.json``
(:data:`nlseg.ops.kernels.CROSSOVERS_PATH`), loaded once (:func:`load_crossover_table`) and
rewritten by ``calibrate_impl.py --write``; the history of its measurements is in
docs/impl_auto.md.

Kernels (:data:`KERNELS`): the keys of the registry :data:`nlseg.ops.kernels.KERNELS`, one
file per kernel under ``nlseg/ops/kernels/`` with the two paths that were timed ('softmax',
'dot_product', 'concatenation', 'relu_dot', 'ns_stage'; 'relu_dot' measured with the
'symmetric' normalisation, 'random_walk' costs the same products; 'ns_stage' with 2 units,
the default).

Only the non-local family (NL, ARNLB, NS, SNL/gSNL) decides 'auto' by this table. The
Hamburger's 'auto' is a rule, not a measurement: its low-rank upper bread whenever it applies
(:class:`nlseg.models.blocks.Hamburger`); no crossover was measured for it.

The table. For each (device type, thread count, kernel) one row holds, for the forward pass
alone (``requires_grad=False``: inference, ``torch.no_grad``) and for forward + backward
(``requires_grad=True``: training), and for each measured channel count C' (the query/key
feature channels; the value channels were equal to C'), the crossover N*: the size N = M up to
which the dense path was measured faster. It is the zero crossing of log(t_dense / t_efficient)
interpolated (log-log) between the last grid size where dense was faster and the first size
from which the efficient path was faster at two consecutive grid sizes (a single faster
measurement does not count). N* = 0: efficient was faster from the smallest size measured.
N* equal to the largest grid size: dense was faster over the whole grid.

The rule (:func:`choose_impl`), for n_query x n_key = N x M:

1. Memory first: 'efficient' whenever the affinity of one batch element would exceed
   :data:`DENSE_AFFINITY_LIMIT_BYTES` (64 MiB: 2**24 float32 elements, N = M = 4096), whatever
   the timing says. The dense ops compute the affinity in float32 (float64 for float64
   inputs: pass ``element_size=8``), and training keeps it (and the softmax's copy) for the
   backward pass, so the real footprint is a small multiple of this.
2. Devices without a measured table (CUDA, MPS, XPU, ... in this table: only the CPU was
   measured) fall back to 'efficient', the memory-lean path.
3. Otherwise 'dense' iff N x M <= N*^2, with N* of the row measured at the thread count
   nearest to ``num_threads`` (default ``torch.get_num_threads()``), for the pass given by
   ``requires_grad``, at C' = ``channels``: interpolated log-log between the two measured
   channel columns around it (the smaller value when either is 0); outside the measured
   channels, the nearest column (no extrapolation). Non-square sizes (sub-sampled keys) use
   the affinity's size N x M, which both the dense path's time and its memory scale with.
   A thread count without its own rows uses the nearest measured one: on a 2-core machine
   shared with other jobs the calibration leaves out a thread count whose cores are
   oversubscribed (its timings would measure the scheduler; see the table's
   ``measured_on`` note).

How good the table is: ``calibrate_impl.py`` checks the table in effect against a fresh
run's timings; the dated results are in docs/impl_auto.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Mapping, Optional

import torch

from nlseg.validation import check_bool, check_choice, check_int
from .kernels import CROSSOVERS_PATH
from .kernels import KERNELS as _REGISTRY

__all__ = [
    'KERNELS', 'IMPLS', 'PASSES', 'PASS_LABELS', 'DEVICE_TYPES', 'DENSE_AFFINITY_LIMIT_BYTES',
    'MEASURED_ON_KEYS', 'CROSSOVERS_PATH', 'CrossoverRow', 'parse_crossover_table',
    'format_crossover_table', 'crossover_table_to_json', 'crossover_table_from_json',
    'load_crossover_table', 'write_crossover_table', 'crossover_size', 'choose_impl',
    'resolve_impl', 'resolve_impl_for'
]

#: Kernels with a dense and an efficient path: the keys of :data:`nlseg.ops.kernels.KERNELS`.
KERNELS = tuple(_REGISTRY)
#: Values of a block's ``impl`` argument.
IMPLS = ('auto', 'dense', 'efficient')
#: Measured passes: 'forward' (no gradient) and 'train' (forward + backward).
PASSES = ('forward', 'train')
#: Column label of each pass in the table text (``fwd@64``: forward at C' = 64).
PASS_LABELS = {'forward': 'fwd', 'train': 'train'}
#: torch device types accepted; only those in the table have measured crossovers.
DEVICE_TYPES = ('cpu', 'cuda', 'mps', 'xpu', 'hpu', 'mtia', 'xla', 'meta', 'privateuseone')
#: Largest dense affinity of one batch element that 'auto' allows (64 MiB).
DENSE_AFFINITY_LIMIT_BYTES = 64 * 2 ** 20

#: Keys of the measured table's ``measured_on`` (the machine and the run that measured it).
MEASURED_ON_KEYS = ('date', 'machine', 'command', 'note')


@dataclass(frozen=True)
class CrossoverRow:
    """One measured row: N* per pass and channel count, for a device, thread count, kernel."""

    device: str
    threads: int
    kernel: str
    crossovers: Mapping[str, Mapping[int, float]]  # pass -> {channels: N*}


def _header_column(name: str) -> tuple[str, int]:
    labels = tuple(PASS_LABELS.values())
    try:
        label, channels = name.split('@')
        channels = int(channels)
    except ValueError:
        raise ValueError(f'crossover table: column {name!r} is not <pass>@<channels>, pass one '
                         f'of {labels}') from None
    check_choice('crossover table pass', label, labels)
    return next(p for p, lb in PASS_LABELS.items() if lb == label), channels


def _make_row(device: str, threads: int, kernel: str, crossovers: Mapping[str, Mapping],
              seen: set) -> CrossoverRow:
    """A checked row (the checks of both the text and the JSON form); ``seen`` collects the
    (device, threads, kernel) keys, a repeated one is refused."""
    check_choice('crossover table device', device, DEVICE_TYPES)
    check_choice('crossover table kernel', kernel, KERNELS)
    check_int('crossover table threads', threads)
    if (device, threads, kernel) in seen:
        raise ValueError(f'crossover table: two rows for {(device, threads, kernel)}')
    seen.add((device, threads, kernel))
    checked: dict[str, dict[int, float]] = {}
    for pass_name, by_channels in crossovers.items():
        check_choice('crossover table pass', pass_name, PASSES)
        for channels, value in by_channels.items():
            try:
                size = float(value)
            except (TypeError, ValueError):
                raise ValueError(f'crossover table: N* must be a number, got {value!r}') from None
            if not size >= 0:
                raise ValueError(f'crossover table: N* must be >= 0, got {value!r}')
            checked.setdefault(pass_name, {})[check_int('crossover table channels',
                                                        int(channels))] = size
    return CrossoverRow(device, threads, kernel, checked)


def parse_crossover_table(text: str) -> list[CrossoverRow]:
    """Parse a crossover table: a header ``device threads kernel <pass>@<C'> ...`` (pass label
    'fwd' or 'train', :data:`PASS_LABELS`) and one whitespace-separated row per (device,
    threads, kernel). ValueError for a malformed table (unknown kernel, pass or device, a
    missing value, a negative N*, a repeated row)."""
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()
             and not ln.lstrip().startswith('#')]
    if not lines or lines[0][:3] != ['device', 'threads', 'kernel']:
        raise ValueError('crossover table must start with the header "device threads kernel '
                         '<pass>@<channels> ..."')
    columns = [_header_column(c) for c in lines[0][3:]]
    rows: list[CrossoverRow] = []
    seen: set = set()
    for fields in lines[1:]:
        if len(fields) != 3 + len(columns):
            raise ValueError(f'crossover table row {" ".join(fields)!r} has {len(fields)} '
                             f'fields, the header {3 + len(columns)}')
        crossovers: dict[str, dict[int, object]] = {}
        for (pass_name, channels), value in zip(columns, fields[3:]):
            crossovers.setdefault(pass_name, {})[channels] = value
        rows.append(_make_row(fields[0], int(fields[1]), fields[2], crossovers, seen))
    return rows


def format_crossover_table(rows: list[CrossoverRow]) -> str:
    """The text form of ``rows`` (what :func:`parse_crossover_table` reads back)."""
    columns = sorted({(p, c) for r in rows for p, cs in r.crossovers.items() for c in cs},
                     key=lambda pc: (PASSES.index(pc[0]), pc[1]))
    header = ['device', 'threads', 'kernel'] + [f'{PASS_LABELS[p]}@{c}' for p, c in columns]
    body = [[r.device, str(r.threads), r.kernel]
            + [f'{r.crossovers[p][c]:.0f}' for p, c in columns] for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    return '\n'.join(' '.join(f.ljust(w) for f, w in zip(line, widths)).rstrip()
                     for line in [header] + body)


def crossover_table_to_json(rows: list[CrossoverRow], measured_on: Mapping[str, str]) -> str:
    """The JSON text of ``rows`` and their ``measured_on`` record (:data:`MEASURED_ON_KEYS`):
    what ``crossovers.json`` holds, one row per line (what
    :func:`crossover_table_from_json` reads back)."""
    missing = [k for k in MEASURED_ON_KEYS if k not in measured_on]
    if missing:
        raise ValueError(f'measured_on lacks {missing}')

    def number(value: float):
        return int(value) if float(value).is_integer() else float(value)

    lines = ['{',
             '  "about": ' + json.dumps(_ABOUT) + ',',
             '  "measured_on": ' + json.dumps({k: str(v) for k, v in measured_on.items()},
                                               indent=4).replace('\n}', '\n  }') + ',',
             '  "rows": [']
    body = []
    for r in rows:
        row = {'device': r.device, 'threads': r.threads, 'kernel': r.kernel}
        for pass_name in sorted(r.crossovers, key=PASSES.index):
            row[pass_name] = {str(c): number(n) for c, n in sorted(r.crossovers[pass_name].items())}
        body.append('    ' + json.dumps(row))
    lines += [',\n'.join(body), '  ]', '}']
    return '\n'.join(lines) + '\n'


_ABOUT = ('impl=\'auto\' crossovers (nlseg/ops/impl_choice.py): per (device, threads, kernel) and '
          'pass, for each measured channel count C\', N*, the size N = M up to which the dense '
          'path was measured faster. Written by tools/analysis/calibrate_impl.py --write.')


def crossover_table_from_json(text: str) -> tuple[list[CrossoverRow], dict]:
    """``(rows, measured_on)`` of the JSON text of a table (:func:`crossover_table_to_json`).
    ValueError for a malformed table (as :func:`parse_crossover_table`; also a missing
    ``measured_on`` key)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f'crossover table: not JSON ({e})') from None
    if not isinstance(data, dict) or not isinstance(data.get('rows'), list) or not isinstance(
            data.get('measured_on'), dict):
        raise ValueError('crossover table: expected an object with "measured_on" (an object) '
                         'and "rows" (a list)')
    measured_on = data['measured_on']
    missing = [k for k in MEASURED_ON_KEYS if not isinstance(measured_on.get(k), str)]
    if missing:
        raise ValueError(f'crossover table: measured_on lacks {missing}')
    rows: list[CrossoverRow] = []
    seen: set = set()
    for row in data['rows']:
        if not isinstance(row, dict) or not {'device', 'threads', 'kernel'} <= set(row):
            raise ValueError(f'crossover table: row {row!r} lacks device, threads or kernel')
        passes = {k: v for k, v in row.items() if k not in ('device', 'threads', 'kernel')}
        if not all(isinstance(v, dict) for v in passes.values()):
            raise ValueError(f'crossover table: row {row!r}: each pass maps C\' to N*')
        rows.append(_make_row(row['device'], row['threads'], row['kernel'], passes, seen))
    return rows, dict(measured_on)


_LOADED: dict[str, tuple[list[CrossoverRow], dict]] = {}


def load_crossover_table(path: Optional[str] = None) -> tuple[list[CrossoverRow], dict]:
    """``(rows, measured_on)`` of the table at ``path`` (default: the package's measured
    table, :data:`CROSSOVERS_PATH`), read once per path and cached."""
    path = CROSSOVERS_PATH if path is None else str(path)
    if path not in _LOADED:
        with open(path, encoding='utf-8') as f:
            _LOADED[path] = crossover_table_from_json(f.read())
    rows, measured_on = _LOADED[path]
    return list(rows), dict(measured_on)


def write_crossover_table(rows: list[CrossoverRow], measured_on: Mapping[str, str],
                          path: Optional[str] = None) -> str:
    """Write ``rows`` and ``measured_on`` as JSON to ``path`` (default: the package's table,
    :data:`CROSSOVERS_PATH`, which ``impl='auto'`` reads in the next process); returns the
    path. The cached copy of that path is dropped."""
    path = CROSSOVERS_PATH if path is None else str(path)
    text = crossover_table_to_json(rows, measured_on)
    crossover_table_from_json(text)  # never write what cannot be read back
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    _LOADED.pop(path, None)
    return path


def __getattr__(name: str):
    """``MEASURED_ON`` (the machine and run of the package's table) and ``CROSSOVER_TABLE``
    (the table in text form, :func:`format_crossover_table`), read from the JSON on first
    use."""
    if name == 'MEASURED_ON':
        return load_crossover_table()[1]
    if name == 'CROSSOVER_TABLE':
        return '\n' + format_crossover_table(load_crossover_table()[0]) + '\n'
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


#: The parsed table in effect (the package's, loaded on first use; tests replace it).
_PARSED: Optional[list[CrossoverRow]] = None


def _module_table() -> list[CrossoverRow]:
    global _PARSED
    if _PARSED is None:
        _PARSED = load_crossover_table()[0]
    return _PARSED


def _interpolate_channels(by_channels: Mapping[int, float], channels: int) -> float:
    """N* at ``channels``: log-log between the measured columns around it (the smaller value
    when either is 0), the nearest column outside the measured range."""
    grid = sorted(by_channels)
    if channels <= grid[0]:
        return by_channels[grid[0]]
    if channels >= grid[-1]:
        return by_channels[grid[-1]]
    hi = next(i for i, c in enumerate(grid) if c >= channels)
    c0, c1 = grid[hi - 1], grid[hi]
    n0, n1 = by_channels[c0], by_channels[c1]
    if channels == c1:
        return n1
    if n0 <= 0 or n1 <= 0:
        return min(n0, n1)
    t = (math.log(channels) - math.log(c0)) / (math.log(c1) - math.log(c0))
    return math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))


def crossover_size(kernel: str, channels: int, device_type: str, requires_grad: bool,
                   num_threads: Optional[int] = None,
                   table: Optional[list[CrossoverRow]] = None) -> Optional[float]:
    """N*, the measured size N = M up to which the dense path is faster, for ``kernel`` at
    C' = ``channels``; None when ``device_type`` has no measured row (no memory cap applied:
    see :func:`choose_impl`). ``table`` defaults to the package's measured table
    (:func:`load_crossover_table`)."""
    check_choice('kernel', kernel, KERNELS)
    check_choice('device_type', device_type, DEVICE_TYPES)
    check_int('channels', channels)
    check_bool('requires_grad', requires_grad)
    if num_threads is None:
        num_threads = torch.get_num_threads()
    check_int('num_threads', num_threads)
    rows = [r for r in (_module_table() if table is None else table)
            if r.device == device_type and r.kernel == kernel]
    pass_name = 'train' if requires_grad else 'forward'
    rows = [r for r in rows if r.crossovers.get(pass_name)]
    if not rows:
        return None
    # the row at the nearest thread count (log scale), the smaller one on a tie; a loop, not
    # min(key=...), which torch.compile cannot trace (a graph break in every block)
    row, best = None, None
    for r in rows:
        distance = (abs(math.log(r.threads) - math.log(num_threads)), r.threads)
        if best is None or distance < best:
            row, best = r, distance
    return _interpolate_channels(row.crossovers[pass_name], channels)


def choose_impl(kernel: str, n_query: int, n_key: int, channels: int, device_type: str,
                requires_grad: bool, num_threads: Optional[int] = None,
                element_size: int = 4, table: Optional[list[CrossoverRow]] = None) -> str:
    """'dense' or 'efficient', the faster exact path of ``kernel`` for an N x M affinity.

    Args:
        kernel: one of :data:`KERNELS`.
        n_query: N, the query positions. n_key: M, the key positions (N/4 with sub_sample).
        channels: C', the query/key feature channels.
        device_type: the inputs' ``device.type``, one of :data:`DEVICE_TYPES`.
        requires_grad: True when a backward pass follows (training), False for inference.
        num_threads: CPU threads (default ``torch.get_num_threads()``): the row measured at
            the nearest thread count is used.
        element_size: bytes per affinity element (4: float32; 8 for float64 inputs).
        table: parsed crossover rows (default: this module's measured table).

    Rules (module docstring): 'efficient' when one batch element's affinity would exceed
    :data:`DENSE_AFFINITY_LIMIT_BYTES`, or when the device has no measured table (CUDA
    included); else 'dense' iff N x M <= N*^2 for the measured crossover N*.
    """
    check_int('n_query', n_query)
    check_int('n_key', n_key)
    check_int('element_size', element_size)
    size = crossover_size(kernel, channels, device_type, requires_grad, num_threads, table)
    if n_query * n_key * element_size > DENSE_AFFINITY_LIMIT_BYTES:
        return 'efficient'
    if size is None:
        return 'efficient'
    return 'dense' if n_query * n_key <= size * size else 'efficient'


def resolve_impl(impl: str, kernel: str, n_query: int, n_key: int, channels: int,
                 device_type: str, requires_grad: bool, **kwargs) -> str:
    """``impl`` unchanged when it is 'dense' or 'efficient'; for 'auto' the path
    :func:`choose_impl` picks (``kwargs`` go to it), or 'efficient' while exporting to ONNX
    or tracing (the graph serves every size). ValueError naming :data:`IMPLS` for any other
    ``impl``, naming :data:`KERNELS` for a ``kernel`` that is not a registry key (whatever
    ``impl``)."""
    check_choice('impl', impl, IMPLS)
    check_choice('kernel', kernel, KERNELS)
    if impl != 'auto':
        return impl
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
        # an exported or traced graph (ONNX, torch.jit.trace, mmengine's FlopAnalyzer) runs
        # at every H, W (symbolic sizes, which tracing hands over as tensors): no
        # size-dependent choice, the memory-lean path
        return 'efficient'
    return choose_impl(kernel, n_query, n_key, channels, device_type, requires_grad, **kwargs)


def resolve_impl_for(impl: str, kernel: str, query: torch.Tensor, key: torch.Tensor,
                     *values: torch.Tensor) -> str:
    """:func:`resolve_impl` with every size read from the tensors the kernel is applied to:
    N = ``query.shape[1]``, M = ``key.shape[1]``, C' = ``query.shape[-1]`` of the (B, N, C')
    query and (B, M, C') key tokens, the device type of ``query``, ``requires_grad`` when
    autograd is enabled and any of ``query``, ``key``, ``values`` requires a gradient, and 8
    bytes per affinity element when any of them is float64 (the dense ops compute in float32
    otherwise, whatever the input dtype)."""
    tensors = (query, key) + values
    if query.dim() != 3 or key.dim() != 3:
        raise ValueError('resolve_impl_for expects (B, N, C\') query and (B, M, C\') key '
                         f'tokens, got shapes {tuple(query.shape)} and {tuple(key.shape)}')
    requires_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    element_size = 8 if any(t.dtype == torch.float64 for t in tensors) else 4
    return resolve_impl(impl, kernel, query.shape[1], key.shape[1], query.shape[-1],
                        query.device.type, requires_grad, element_size=element_size)
