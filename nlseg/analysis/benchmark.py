"""The benchmark harness that nlseg's benchmarks share: the case files, a measurement per
fresh process, timing, peak memory and the markdown/CSV tables.

* Cases: ``nlseg/analysis/bench_cases/<family>.py`` define ``cases(in_channels, channels)
  -> {name: builder}`` (:func:`list_families`, :func:`load_cases`).
* Processes: a benchmark runs each case in a fresh Python process (``python -m <its module>
  ...``) that prints its result as one JSON line (:func:`spawn_json`, :func:`last_json`).
* Time: the median of ``repeats`` runs after ``warmup`` runs, synchronising CUDA around each
  (:func:`timed`).
* Memory (:class:`PeakMemory`): on CUDA ``torch.cuda.max_memory_allocated`` above the
  allocation at ``start()``; on the CPU the peak resident set (VmHWM, reset through
  /proc/self/clear_refs) above the resident set at ``start()``, glibc's free heap released
  first.
* Tables: :func:`markdown_table`, :func:`write_table` (``benchmark.md`` and ``benchmark.csv``).
"""
from __future__ import annotations

import csv
import glob
import importlib
import json
import os
import os.path as osp
import statistics
import subprocess
import time
from typing import Any, Callable, Optional, Sequence, Union

#: the repository root (the checkout of an editable install): default output folders and the
#: configs that benchmarks build live under it
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CASES_PACKAGE = 'nlseg.analysis.bench_cases'
CASES_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'bench_cases')

__all__ = ['ROOT', 'list_families', 'load_cases', 'PeakMemory', 'sync', 'timed', 'last_json',
           'spawn_json', 'markdown_table', 'write_table']


# ----------------------------------------------------------------------------- the cases
def list_families() -> list[str]:
    """The case families: the modules of ``nlseg/analysis/bench_cases``."""
    return sorted(osp.splitext(osp.basename(p))[0]
                  for p in glob.glob(osp.join(CASES_DIR, '*.py'))
                  if not osp.basename(p).startswith('_'))


def load_cases(family: str, in_channels: int, channels: int) -> dict[str, Callable[[], Any]]:
    """``{name: builder}`` of the family's case file at these channel counts."""
    return importlib.import_module(f'{CASES_PACKAGE}.{family}').cases(in_channels, channels)


# ---------------------------------------------------------------------- time and memory
def _rss_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def _release_free_heap() -> None:
    """Give the heap glibc keeps after ``free`` back to the OS (``malloc_trim``), so the
    baseline RSS is the memory really in use: otherwise a step reuses the pages freed by the
    warm-up (or an earlier case) without raising RSS, and its peak is understated by an
    amount that depends on the warm-up's allocation pattern (many small tensors, as BPTT
    through the hams makes, leave the most behind)."""
    import ctypes
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to release
        pass


class PeakMemory:
    """Peak memory above the level at ``start()`` (see the module docstring)."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def start(self) -> None:
        """Reset the peak and take the current level as the base."""
        import torch
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            _release_free_heap()
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
            self.base = _rss_kib('VmRSS') * 1024

    def peak_mb(self) -> float:
        """The peak since ``start()`` above the base, in MiB."""
        import torch
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        return (_rss_kib('VmHWM') * 1024 - self.base) / 2**20


def sync(device: Any) -> None:
    """Wait for the device's queued work (CUDA; nothing on the CPU)."""
    import torch
    if device is not None and device.type == 'cuda':
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: Any = None, warmup: int = 1,
          repeats: int = 3) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` calls (CUDA
    synchronised around each timed call; ``device`` None: the CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ------------------------------------------------------------------------- the processes
def last_json(stdout: str) -> Optional[dict]:
    """The last line of ``stdout`` that starts with ``{``, parsed (None: no such line)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    return None


def spawn_json(cmd: Sequence[str], timeout: float, base: dict,
               cwd: Optional[str] = None) -> dict:
    """Run ``cmd`` (a child that prints its result as a JSON line) and return that result;
    on failure ``base`` with an ``error`` (timeout, killed, or the exit status and the last
    line of its output)."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              cwd=cwd)
    except subprocess.TimeoutExpired:
        return dict(base, error=f'timeout {timeout}s')
    result = last_json(proc.stdout)
    if result is not None:
        return result
    if proc.returncode in (-9, 137):
        return dict(base, error='killed (SIGKILL: out of memory?)')
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']
    return dict(base, error=f'exit {proc.returncode}: {tail[0][:200]}')


# ---------------------------------------------------------------------------- the tables
def markdown_table(header: Sequence[str], rows: Sequence[Union[str, Sequence[str]]]) -> str:
    """A markdown table: the header, the rule, then a line per row (a row given as a string
    is taken as an already written line)."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += [row if isinstance(row, str) else '| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def write_table(rows: Sequence[dict], out_dir: str, markdown: str,
                fieldnames: Sequence[str]) -> tuple[str, str]:
    """Write ``markdown`` to ``out_dir/benchmark.md`` and ``rows`` (the ``fieldnames``
    columns) to ``out_dir/benchmark.csv``; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    md_path, csv_path = osp.join(out_dir, 'benchmark.md'), osp.join(out_dir, 'benchmark.csv')
    with open(md_path, 'w') as f:
        f.write(markdown + '\n')
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames), extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    return md_path, csv_path
