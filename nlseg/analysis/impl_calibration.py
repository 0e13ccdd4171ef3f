"""Measure where the dense path of each kernel stops being faster than the efficient one, and
(with ``--write``) store the crossovers in ``nlseg/ops/kernels/crossovers.json`` (package data,
read by :mod:`nlseg.ops.impl_choice` for ``impl='auto'``).

For every thread count (1 and ``--threads``), kernel of the registry
``nlseg.ops.kernels.KERNELS`` (its ``dense`` and ``efficient`` paths on its
``example_inputs``),
pass (forward under ``torch.no_grad``; forward + backward of all inputs) and channel count C'
of ``--channels``, the dense and the efficient path are timed at N = M = each of ``--sizes``
(batch ``--batch``, float32), median of ``--repeats`` runs after one warm-up run (the two
paths' runs interleaved), all in this one process. A series stops once the efficient path
was faster at two consecutive sizes (the crossover is then fixed, see the impl_choice
docstring; ``--full`` measures every size). Takes 2-5 minutes on a 2-core machine.

A thread count above 1 is skipped (and the skip recorded in the table's note) when a
contention probe, a 64 x 64 matrix product, runs over 10x slower there than on one thread:
other processes then hold the cores and every parallel region waits for a descheduled
thread, so the timings would measure the scheduler (``--force-threads`` measures anyway).
Each of its series is checked too (a cell over 4x slower than on one thread, or an
oversubscribed probe after it) and measured again up to ``--retries`` times; when it stays
contended the thread count is abandoned and its rows left out. ``impl_choice`` then uses the
row of the nearest measured thread count.

    OMP_NUM_THREADS=2 python tools/analysis/calibrate_impl.py            # print only
    OMP_NUM_THREADS=2 python tools/analysis/calibrate_impl.py --write --note "shared machine"
    python tools/analysis/calibrate_impl.py --kernels softmax --channels 64 --sizes 64 256 1024
    python tools/analysis/calibrate_impl.py --write --table-path /tmp/crossovers.json

``--write`` writes the JSON (the measured rows and a ``measured_on`` record: date, machine,
command, note) to ``--table-path`` (default: the package's ``crossovers.json``); record the run
in docs/impl_auto.md.

Prints, per series, the milliseconds of both paths and their ratio at each size and the
crossover N*, then the table (text form, :func:`~nlseg.ops.impl_choice.format_crossover_table`),
and a check
of the table in effect when the run started against this run's timings (how much slower the
path it picks is than the faster one, and the same for always picking 'efficient').

``tools/analysis/calibrate_impl.py`` is the command line over :func:`main`.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import os.path as osp
import platform
import shlex
import statistics
import sys
import time
from typing import Callable, Optional

import torch

from nlseg.ops import impl_choice
from nlseg.ops.impl_choice import KERNELS, CrossoverRow, format_crossover_table
from nlseg.ops.kernels import CROSSOVERS_PATH
from nlseg.ops.kernels import KERNELS as REGISTRY

#: the repository root (the checkout of an editable install): paths are printed relative to it
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: where ``--write`` puts the table by default: the package's crossovers.json
TABLE_PATH = CROSSOVERS_PATH

Inputs = list[torch.Tensor]
Path = Callable[[Inputs], torch.Tensor]


# ----------------------------------------------------------------------------- the kernels
def make_inputs(kernel: str, batch: int, n: int, channels: int, ns_units: int,
                requires_grad: bool, seed: int = 0) -> tuple[Inputs, dict]:
    """``(tensors, params)`` of the registry's ``example_inputs`` (float32, seed ``seed``):
    query (B, N, C'), key (B, N, C') and value(s) (B, N, C'); the 1 x 2C' concatenation
    projection for 'concatenation', one value per unit for 'ns_stage'."""
    return REGISTRY[kernel].example_inputs(batch, n, channels, units=ns_units,
                                           generator=torch.Generator().manual_seed(seed),
                                           requires_grad=requires_grad)


def paths(kernel: str, params: dict) -> tuple[Path, Path]:
    """The registry's dense and efficient path of ``kernel`` as functions of the input
    tensors (``params`` bound)."""
    entry = REGISTRY[kernel]
    return (lambda t: entry.dense(*t, **params)), (lambda t: entry.efficient(*t, **params))


# ----------------------------------------------------------------------------- timing
def _run_once(path: Path, inputs: Inputs, train: bool) -> float:
    """Seconds of one forward (no gradient), or forward + backward of every input."""
    start = time.perf_counter()
    if train:
        out = path(inputs)
        outs = out if isinstance(out, tuple) else (out,)  # ns_stage: one output per unit
        torch.autograd.grad(outs, inputs, [torch.ones_like(o) for o in outs])
    else:
        with torch.no_grad():
            path(inputs)
    return time.perf_counter() - start


def time_pair(dense: Path, efficient: Path, inputs: Inputs, train: bool, repeats: int,
              cell_seconds: float) -> tuple[float, float]:
    """Median seconds of the dense and the efficient path, their runs interleaved (so that a
    change of load on a shared machine hits both alike), after one warm-up run of each.
    Fewer runs (at least 3) when one pair takes more than ``cell_seconds / repeats``; when
    one pair alone takes more than ``cell_seconds``, the warm-up counts as the first run."""
    first = (_run_once(dense, inputs, train), _run_once(efficient, inputs, train))
    pair = sum(first)
    count = max(3, min(repeats, int(cell_seconds / max(pair, 1e-9))))
    times: tuple[list[float], list[float]] = ([], [])
    if pair > cell_seconds:
        times[0].append(first[0])
        times[1].append(first[1])
    while len(times[0]) < count:
        times[0].append(_run_once(dense, inputs, train))
        times[1].append(_run_once(efficient, inputs, train))
    return statistics.median(times[0]), statistics.median(times[1])


def crossover(sizes: list[int], ratios: list[float]) -> float:
    """N* from the ratios t_dense / t_efficient at ``sizes`` (ascending): the log-log zero
    crossing of log ratio before the first size from which efficient was faster at two
    consecutive sizes (or at the last size); 0 when that is the first size, the largest size
    when dense was never beaten so."""
    for i, r in enumerate(ratios):
        if r > 1 and (i + 1 == len(ratios) or ratios[i + 1] > 1):
            if i == 0:
                return 0.0
            r0, r1 = math.log(ratios[i - 1]), math.log(r)
            s0, s1 = math.log(sizes[i - 1]), math.log(sizes[i])
            t = (0.0 - r0) / (r1 - r0) if r1 != r0 else 0.0
            return math.exp(s0 + t * (s1 - s0))
    return float(sizes[-1])


def measure_series(kernel: str, train: bool, channels: int, args) -> tuple[list, float]:
    """[(N, ms dense, ms efficient, ratio)] and N* of one series."""
    rows, sizes, ratios = [], [], []
    for n in args.sizes:
        inputs, params = make_inputs(kernel, args.batch, n, channels, args.ns_units, train)
        dense, efficient = paths(kernel, params)
        t_dense, t_eff = time_pair(dense, efficient, inputs, train, args.repeats,
                                   args.cell_seconds)
        ratio = t_dense / t_eff
        rows.append((n, 1e3 * t_dense, 1e3 * t_eff, ratio))
        sizes.append(n)
        ratios.append(ratio)
        if not args.full and len(ratios) >= 2 and ratios[-1] > 1 and ratios[-2] > 1:
            break
    return rows, crossover(sizes, ratios)


# ----------------------------------------------------------------------------- table
def check_table(cells: list) -> str:
    """How the table in effect (the package's crossovers.json when this run started) does on
    this run's timings: for every measured cell the time of the path ``choose_impl`` picks
    over the faster one, against always picking 'efficient' (the former 'auto')."""
    picked, efficient = [], []
    for n_threads, kernel, pass_name, channels, n, dense_ms, eff_ms in cells:
        best = min(dense_ms, eff_ms)
        impl = impl_choice.choose_impl(kernel, n, n, channels, 'cpu', pass_name == 'train',
                                       num_threads=n_threads)
        picked.append((dense_ms if impl == 'dense' else eff_ms) / best)
        efficient.append(eff_ms / best)
    if not cells:
        return 'no cells measured'

    def summary(ratios: list[float]) -> str:
        within = 100 * sum(r <= 1.1 for r in ratios) / len(ratios)
        return (f'within 10% of the faster path in {within:.0f}% of cells, mean time '
                f'{statistics.mean(ratios):.3f}x the faster, worst {max(ratios):.2f}x')
    return (f'the table in effect at the start, on this run\'s {len(cells)} cells: '
            f'{summary(picked)}; always efficient: {summary(efficient)}')


def machine_text(threads: list[int]) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = [ln.split(':', 1)[1].strip() for ln in f if ln.startswith('model name')]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f'{cpu}, {os.cpu_count()} logical cores, {platform.system()}, torch '
            f'{torch.__version__}, threads {"/".join(map(str, threads))}')


def contention_probe(runs: int = 200) -> float:
    """Median microseconds of a 64 x 64 float32 matrix product at the current thread count:
    on an idle machine about the same for 1 and 2 threads; many times more for 2 threads
    when other processes occupy the cores (each parallel region then waits for a thread
    that is not scheduled), which makes that thread count's table unreliable."""
    a = torch.randn(64, 64)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        torch.mm(a, a)
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times)


def oversubscribed(probe: float, single_thread_probe: float) -> bool:
    """True when the multi-threaded probe is over 10x (and 100 us) slower than on one
    thread: other processes hold the cores."""
    return probe > max(10 * single_thread_probe, single_thread_probe + 100)


def _load_average() -> str:
    """The 1-minute load average (other processes sharing the cores), or '?'."""
    try:
        return f'{os.getloadavg()[0]:.1f}'
    except (OSError, AttributeError):
        return '?'


def write_table(rows: list[CrossoverRow], measured_on: dict, path: str = TABLE_PATH) -> str:
    """Write ``rows`` and ``measured_on`` as the JSON table to ``path`` (default: the
    package's crossovers.json); returns the path."""
    return impl_choice.write_crossover_table(rows, measured_on, path)


# ----------------------------------------------------------------------------- main
def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    default_threads = int(os.environ.get('OMP_NUM_THREADS', torch.get_num_threads()))
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--threads', type=int, default=default_threads,
                   help='thread count measured besides 1 (default: $OMP_NUM_THREADS or '
                        "torch's)")
    p.add_argument('--kernels', nargs='+', default=list(KERNELS), choices=KERNELS)
    p.add_argument('--sizes', nargs='+', type=int,
                   default=[16, 32, 64, 128, 256, 512, 1024, 2048, 4096])
    p.add_argument('--channels', nargs='+', type=int, default=[32, 64, 128, 256])
    p.add_argument('--passes', nargs='+', default=['forward', 'train'],
                   choices=['forward', 'train'])
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--repeats', type=int, default=9,
                   help='runs per (path, size) cell, fewer (>= 3) beyond --cell-seconds')
    p.add_argument('--cell-seconds', type=float, default=1.0,
                   help='time budget of one (path, size) cell: fewer repeats (>= 3) beyond')
    p.add_argument('--ns-units', type=int, default=2, help="units of the 'ns_stage' kernel")
    p.add_argument('--force-threads', action='store_true',
                   help='measure a thread count > 1 even when the contention probe says the '
                        'cores are oversubscribed (default: skip it, say so in the note)')
    p.add_argument('--retries', type=int, default=2,
                   help='measurements again of a contended multi-threaded series')
    p.add_argument('--retry-pause', type=float, default=2.0,
                   help='seconds to wait before measuring a contended series again')
    p.add_argument('--full', action='store_true',
                   help='measure every size (no stop after the crossover)')
    p.add_argument('--write', action='store_true',
                   help='write the table (JSON) to --table-path')
    p.add_argument('--table-path', default=TABLE_PATH,
                   help="where --write puts the table (default: the package's "
                        'nlseg/ops/kernels/crossovers.json)')
    p.add_argument('--note', default='', help='stored with the table (e.g. "shared machine")')
    args = p.parse_args(argv)
    args.sizes, args.channels = sorted(set(args.sizes)), sorted(set(args.channels))
    if min(args.sizes + args.channels + [args.batch, args.repeats, args.threads]) < 1:
        p.error('sizes, channels, batch, repeats and threads must be positive')
    if args.retries < 0 or args.retry_pause < 0:
        p.error('--retries and --retry-pause must be >= 0')
    if args.write and (sorted(args.kernels) != sorted(KERNELS) or len(set(args.passes)) != 2):
        p.error('--write replaces the whole table: measure every kernel and both passes')
    return args


class Oversubscribed(RuntimeError):
    """The cores stayed oversubscribed for a thread count above 1 (see :func:`contended`)."""


def contended(series: list, reference: dict, single_thread_probe: float,
              factor: float = 4.0) -> Optional[str]:
    """Why a multi-threaded ``series`` [(N, ms dense, ms efficient, ratio)] is not to be
    trusted, or None: a cell over ``factor`` x slower than the same cell on one thread
    (``reference``: {N: (ms dense, ms efficient)}; more threads never cost that much on free
    cores), or a contention probe (20 runs) after it that is oversubscribed."""
    for n, dense_ms, eff_ms, _ in series:
        if n in reference:
            ref_dense, ref_eff = reference[n]
            if dense_ms > factor * ref_dense or eff_ms > factor * ref_eff:
                return (f'N={n}: {dense_ms:.3g}/{eff_ms:.3g} ms against {ref_dense:.3g}/'
                        f'{ref_eff:.3g} ms on one thread')
    probe = contention_probe(runs=20)
    if oversubscribed(probe, single_thread_probe):
        return f'64x64 matmul {probe:.0f} us against {single_thread_probe:.0f} us on one thread'
    return None


def measure_thread_count(n_threads: int, args: argparse.Namespace, cells: list,
                         single_thread_probe: float = 0.0) -> list[CrossoverRow]:
    """One row per kernel of ``args.kernels`` at ``n_threads`` threads (set by the caller),
    printing every series; every measured (threads, kernel, pass, C', N, ms dense,
    ms efficient) is appended to ``cells``. Above one thread a series judged
    :func:`contended` (against the one-thread cells already in ``cells``) is measured again,
    up to ``args.retries`` times after a pause; then :class:`Oversubscribed` is raised."""
    rows = []
    for kernel in args.kernels:
        crossovers: dict[str, dict[int, float]] = {}
        for pass_name in args.passes:
            for channels in args.channels:
                reference = {c[4]: (c[5], c[6]) for c in cells
                             if c[:4] == (1, kernel, pass_name, channels)}
                for attempt in range(args.retries + 1):
                    series_start = time.perf_counter()
                    series, n_star = measure_series(kernel, pass_name == 'train', channels,
                                                    args)
                    why = None if n_threads == 1 or args.force_threads else contended(
                        series, reference, single_thread_probe)
                    if why is None:
                        break
                    print(f'threads={n_threads} {kernel} {pass_name} C\'={channels}: cores '
                          f'oversubscribed ({why}), attempt {attempt + 1} of '
                          f'{args.retries + 1}', flush=True)
                    if attempt == args.retries:
                        raise Oversubscribed(f'{kernel} {pass_name} C\'={channels}: {why}')
                    time.sleep(args.retry_pause)
                n_star = float(round(n_star))  # the table holds whole sizes
                crossovers.setdefault(pass_name, {})[channels] = n_star
                text = '  '.join(f'{n}:{d:.3g}/{e:.3g}={r:.2f}' for n, d, e, r in series)
                print(f'threads={n_threads} {kernel:<13} {pass_name:<7} C\'={channels:<4} '
                      f'N*={n_star:<6.0f} ({time.perf_counter() - series_start:.1f} s) '
                      f'[N:ms dense/ms efficient=ratio] {text}', flush=True)
                cells += [(n_threads, kernel, pass_name, channels, n, d, e)
                          for n, d, e, _ in series]
        rows.append(CrossoverRow('cpu', n_threads, kernel, crossovers))
    return rows


def main(argv: Optional[list[str]] = None) -> list[CrossoverRow]:
    args = parse_args(argv)
    threads = sorted({1, args.threads})
    started = time.perf_counter()
    load_before = _load_average()
    rows: list[CrossoverRow] = []
    probes, skipped, single_thread_probe, cells = [], [], None, []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        probe = contention_probe()
        probes.append(f'{probe:.0f} us at {n_threads} thread(s)')
        print(f'threads={n_threads}: 64x64 matmul {probe:.0f} us (contention probe)', flush=True)
        if n_threads == 1:
            single_thread_probe = probe
        elif oversubscribed(probe, single_thread_probe) and not args.force_threads:
            print(f'threads={n_threads}: SKIPPED, the cores are oversubscribed (the 64x64 matmul '
                  f'takes {probe:.0f} us against {single_thread_probe:.0f} us on one thread: '
                  'its timings would measure the scheduler; --force-threads measures anyway)',
                  flush=True)
            skipped.append(n_threads)
            continue
        try:
            rows += measure_thread_count(n_threads, args, cells, single_thread_probe)
        except Oversubscribed as e:
            print(f'threads={n_threads}: ABANDONED, its rows are left out ({e})', flush=True)
            skipped.append(n_threads)
            cells[:] = [c for c in cells if c[0] != n_threads]
    elapsed = time.perf_counter() - started
    command = ' '.join(['OMP_NUM_THREADS=' + os.environ['OMP_NUM_THREADS']]
                       if 'OMP_NUM_THREADS' in os.environ else [])
    command = (command + ' python tools/analysis/calibrate_impl.py '
               + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    measured_on = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        'machine': machine_text([t for t in threads if t not in skipped]),
        'command': command,
        'note': (f'batch {args.batch}, float32, median of up to {args.repeats} runs, '
                 f'ns_stage with {args.ns_units} units, {elapsed:.0f} s, load average '
                 f'{load_before} before and {_load_average()} after, 64x64 matmul '
                 + ', '.join(probes)
                 + (f'; {"/".join(map(str, skipped))} threads not measured: cores '
                    'oversubscribed (contention probe, retries)' if skipped else '')
                 + (f'; {args.note}' if args.note else '')),
    }
    print(f'\nN* (dense faster up to N = M = N*), measured in {elapsed:.0f} s:')
    print(format_crossover_table(rows))
    print(check_table(cells))
    if args.write:
        path = write_table(rows, measured_on, args.table_path)
        print(f'written to {osp.relpath(path, ROOT)}')
    return rows


if __name__ == '__main__':
    main()
