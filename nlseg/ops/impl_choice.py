"""``impl='auto'``: pick the faster of the two exact paths of a kernel, from measured crossovers.

Every block with a fast path has a dense path (it materialises the N x M affinity) and an
efficient one (fused attention, associativity or query chunks, never N x M); both are exact
and tested equal. Which one is faster depends on the size: for a small affinity the dense
path's few large matrix products beat the efficient path's fixed costs (padding, chunk loops,
two extra products), for a large one the N x M memory traffic of the dense path loses. This
module decides from a table of crossover sizes MEASURED by ``tools/analysis/calibrate_impl.py``
on the machine named in :data:`MEASURED_ON` (not from a cost model).

Kernels (:data:`KERNELS`), the path pairs that were timed:

- ``'softmax'``: softmax_j(scale q_i . k_j) v_j, dense ``softmax_affinity`` + ``apply_affinity``
  against fused ``softmax_attention`` (NL embedded_gaussian and gaussian, ARNLB).
- ``'dot_product'``: (q k^T / M) v against q (k^T v) / M (NL dot_product).
- ``'concatenation'``: relu(a_i + b_j) / M applied to v, dense against query chunks (NL
  concatenation).
- ``'relu_dot'``: the SNL/gSNL normalised low-rank symmetric affinity A v, dense against the
  associative product (measured with the 'symmetric' normalisation; 'random_walk' costs the
  same products).
- ``'ns_stage'``: the NS stage's shared affinity used by its units (measured with 2 units, the
  default): dense forms A once and multiplies it per unit, efficient runs fused attention
  per unit.

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
   oversubscribed (its timings would measure the scheduler; see :data:`MEASURED_ON`).

How good the table is: ``calibrate_impl.py`` checks the table in effect against a fresh
run's timings. The 1- and 2-thread table of 2026-12-02 16:28 was measured with nothing else
running; the single-thread table before it (16:08) picked, on that run's 540 cells, a path
within 10% of the faster one in 99% of them (1.006x the faster on average). That earlier
table, applied to the timings of six other runs on the same shared 2-core machine that day
(load averages 2-10), picked a path
within 10% of the faster one in 93-97% of the (kernel, pass, C', N) cells and was on average
0.8-4.1% slower than the faster path; always 'efficient' (the former 'auto') was within 10%
in 38-41% of the cells and 1.29-1.64x slower on average (the efficient softmax,
concatenation and NS backward passes recompute the affinity in chunks). Run-to-run, N*
varies by up to a few x where the two paths take about the same time (ratios 0.8-1.2 over a
range of N), where either choice costs little.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional

import torch

from nlseg.validation import check_bool, check_choice, check_int

__all__ = [
    'KERNELS', 'IMPLS', 'PASSES', 'PASS_LABELS', 'DEVICE_TYPES', 'DENSE_AFFINITY_LIMIT_BYTES',
    'MEASURED_ON', 'CROSSOVER_TABLE', 'CrossoverRow', 'parse_crossover_table',
    'format_crossover_table', 'crossover_size', 'choose_impl', 'resolve_impl', 'resolve_impl_for'
]

#: Kernels with a dense and an efficient path (see the module docstring).
KERNELS = ('softmax', 'dot_product', 'concatenation', 'relu_dot', 'ns_stage')
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

# --- BEGIN MEASURED TABLE (rewritten by tools/analysis/calibrate_impl.py --write) ---
MEASURED_ON = {
    'date': '2026-12-02 16:28 UTC',
    'machine': 'Intel(R) Xeon(R) Processor, 2 logical cores, Linux, torch 2.13.0+cpu, threads 1/2',
    'command': ('OMP_NUM_THREADS=2 python tools/analysis/calibrate_impl.py --write --note '
                "'2-core machine, nothing else running'"),
    'note': ('batch 1, float32, median of up to 9 runs, ns_stage with 2 units, 111 s, load '
             'average 0.3 before and 1.4 after, 64x64 matmul 5 us at 1 thread(s), 5 us at 2 '
             'thread(s); 2-core machine, nothing else running'),
}
CROSSOVER_TABLE = """
device threads kernel        fwd@32 fwd@64 fwd@128 fwd@256 train@32 train@64 train@128 train@256
cpu    1       softmax       68     147    310     193     1659     1575     1740      2045
cpu    1       dot_product   0      0      51      232     0        45       104       260
cpu    1       concatenation 343    272    312     283     1895     1925     1750      2397
cpu    1       relu_dot      55     107    167     426     153      188      271       523
cpu    1       ns_stage      544    1343   2204    1929    2935     3383     4096      4096
cpu    2       softmax       0      0      0       312     1361     1551     1943      2647
cpu    2       dot_product   0      0      80      238     0        21       109       252
cpu    2       concatenation 331    248    268     338     2715     2478     2278      2306
cpu    2       relu_dot      66     115    150     429     161      260      336       526
cpu    2       ns_stage      392    1261   1372    2372    2562     3804     4096      4096
"""
# --- END MEASURED TABLE ---


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
    rows, seen = [], set()
    for fields in lines[1:]:
        if len(fields) != 3 + len(columns):
            raise ValueError(f'crossover table row {" ".join(fields)!r} has {len(fields)} '
                             f'fields, the header {3 + len(columns)}')
        device, threads, kernel = fields[0], int(fields[1]), fields[2]
        check_choice('crossover table device', device, DEVICE_TYPES)
        check_choice('crossover table kernel', kernel, KERNELS)
        if (device, threads, kernel) in seen:
            raise ValueError(f'crossover table: two rows for {(device, threads, kernel)}')
        seen.add((device, threads, kernel))
        crossovers: dict[str, dict[int, float]] = {}
        for (pass_name, channels), value in zip(columns, fields[3:]):
            size = float(value)
            if not size >= 0:
                raise ValueError(f'crossover table: N* must be >= 0, got {value!r}')
            crossovers.setdefault(pass_name, {})[channels] = size
        rows.append(CrossoverRow(device, threads, kernel, crossovers))
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


_PARSED: Optional[list[CrossoverRow]] = None


def _module_table() -> list[CrossoverRow]:
    global _PARSED
    if _PARSED is None:
        _PARSED = parse_crossover_table(CROSSOVER_TABLE)
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
    see :func:`choose_impl`). ``table`` defaults to the module's :data:`CROSSOVER_TABLE`."""
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
    ``impl``."""
    check_choice('impl', impl, IMPLS)
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
