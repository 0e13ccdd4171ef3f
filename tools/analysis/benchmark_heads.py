"""Head benchmark: parameters, MACs, peak memory and time of one training step and one
inference, for every nlseg head and mmseg's own heads as anchors, each in its own process.

Cases come from ``tools/analysis/bench_cases/<family>.py`` (``cases(in_channels, channels)``
returns ``{name: builder}``). Every figure is also given as a ratio to ``mmseg_nlhead``
measured in the same run.

    python tools/analysis/benchmark_heads.py                       # all cases, 1x512x128x128
    python tools/analysis/benchmark_heads.py --cases anchors nonlocal --size 64
    python tools/analysis/benchmark_heads.py --sizes 32 64 128     # growth with N
    python tools/analysis/benchmark_heads.py --only mmseg_nlhead snl --no-macs

Memory: on CUDA ``torch.cuda.max_memory_allocated`` above the allocation before the step;
on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs) above the resident
set before the step. Time: median of ``--repeats`` runs after ``--warmup`` runs.
MACs: mmengine's FlopAnalyzer count (what ``get_model_complexity_info`` reports) and the
completed count of :func:`nlseg.utils.complexity.complexity_info`, which adds the products
mmengine leaves at zero (fused attention, nlseg's chunked concatenation, linalg_solve,
baddbmm); element-wise ops count zero in both.
"""
from __future__ import annotations

import argparse
import csv
import glob
import importlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
ANCHOR = 'mmseg_nlhead'


def list_families() -> list[str]:
    return sorted(osp.splitext(osp.basename(p))[0]
                  for p in glob.glob(osp.join(HERE, 'bench_cases', '*.py'))
                  if not osp.basename(p).startswith('_'))


def load_cases(family: str, in_channels: int, channels: int) -> dict:
    module = importlib.import_module(f'bench_cases.{family}')
    return module.cases(in_channels, channels)


# ----------------------------------------------------------------------------- child side
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


class _Memory:
    """Peak memory above the level at ``start()``."""

    def __init__(self, device):
        self.device = device

    def start(self):
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
        import torch
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        return (_rss_kib('VmHWM') * 1024 - self.base) / 2**20


def _is_head(module) -> bool:
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    return isinstance(module, BaseDecodeHead)


def _call(module, x):
    out = module([x]) if _is_head(module) else module(x)
    # DAHead returns (pam_cam, pam, cam) in training: the first is the segmentation output
    return out[0] if isinstance(out, (tuple, list)) else out


def _timed(fn, device, warmup: int, repeats: int) -> float:
    import torch
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_case(family: str, name: str, args) -> dict:
    import torch

    import nlseg  # noqa: F401
    device = torch.device(args.device)
    torch.manual_seed(0)
    module = load_cases(family, args.in_channels, args.channels)[name]().to(device)
    x = torch.randn(1, args.in_channels, args.size, args.size, device=device)
    result = dict(family=family, case=name, size=args.size,
                  params_m=sum(p.numel() for p in module.parameters()) / 1e6)
    if args.macs:
        from nlseg.utils.complexity import complexity_info
        module.eval()
        info = complexity_info(module, ([x], ) if _is_head(module) else (x, ))
        result['macs_g'] = info['flops_mmengine'] / 1e9  # mmengine's "flops" are MACs
        result['macs_all_g'] = info['flops'] / 1e9
    memory = _Memory(device)

    if args.train:
        module.train()

        def train_step():
            module.zero_grad(set_to_none=True)
            out = _call(module, x)
            out.float().square().mean().backward()

        train_step()  # first call allocates the gradients: not part of the step's peak
        memory.start()
        result['train_s'] = _timed(train_step, device, args.warmup, args.repeats)
        result['train_mem_mb'] = memory.peak_mb()
        module.zero_grad(set_to_none=True)

    module.eval()

    def infer():
        with torch.no_grad():
            _call(module, x)

    infer()
    memory.start()
    result['infer_s'] = _timed(infer, device, args.warmup, args.repeats)
    result['infer_mem_mb'] = memory.peak_mb()
    return result


# ---------------------------------------------------------------------------- parent side
METRICS = [('params_m', 'params (M)', '{:.3f}'), ('macs_g', 'MACs mmengine (G)', '{:.2f}'),
           ('macs_all_g', 'MACs all (G)', '{:.2f}'),
           ('train_s', 'train step (s)', '{:.3f}'), ('train_mem_mb', 'train peak (MB)', '{:.0f}'),
           ('infer_s', 'inference (s)', '{:.3f}'), ('infer_mem_mb', 'infer peak (MB)', '{:.0f}')]
RATIO_KEYS = ['train_s', 'train_mem_mb', 'infer_s', 'infer_mem_mb']


def spawn_case(family: str, name: str, size: int, args) -> dict:
    cmd = [sys.executable, __file__, '--run-case', f'{family}:{name}', '--size', str(size),
           '--in-channels', str(args.in_channels), '--channels', str(args.channels),
           '--device', args.device, '--warmup', str(args.warmup),
           '--repeats', str(args.repeats)]
    cmd += [] if args.macs else ['--no-macs']
    cmd += [] if args.train else ['--no-train']
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return dict(family=family, case=name, size=size, error=f'timeout {args.timeout}s')
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['no output']
    return dict(family=family, case=name, size=size,
                error=f'exit {proc.returncode}: {tail[0][:200]}')


def add_ratios(rows: list[dict]) -> None:
    anchors = {r['size']: r for r in rows if r['case'] == ANCHOR and 'error' not in r}
    for row in rows:
        anchor = anchors.get(row['size'])
        for key in RATIO_KEYS:
            if anchor and key in row and anchor.get(key):
                row[f'{key}_ratio'] = row[key] / anchor[key]


def to_markdown(rows: list[dict]) -> str:
    header = ['case', 'size'] + [label for _, label, _ in METRICS] + [
        f'{k} / NLHead' for k in ('train', 'train mem', 'infer', 'infer mem')]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        if 'error' in row:
            lines.append(f"| {row['case']} | {row['size']} | " +
                         f"error: {row['error']} |" + ' |' * (len(header) - 3))
            continue
        cells = [row['case'], str(row['size'])]
        cells += [fmt.format(row[k]) if k in row else '-' for k, _, fmt in METRICS]
        cells += [f"{row[k + '_ratio']:.2f}x" if k + '_ratio' in row else '-'
                  for k in RATIO_KEYS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_outputs(rows: list[dict], out_dir: str) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    md_path, csv_path = osp.join(out_dir, 'benchmark.md'), osp.join(out_dir, 'benchmark.csv')
    with open(md_path, 'w') as f:
        f.write(to_markdown(rows) + '\n')
    keys = ['family', 'case', 'size'] + [k for k, _, _ in METRICS] + [
        f'{k}_ratio' for k in RATIO_KEYS] + ['error']
    with open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    return md_path, csv_path


def growth_table(rows: list[dict]) -> str:
    """How time and memory grow with N between consecutive sizes (exponent p in N^p)."""
    import math
    by_case: dict[str, list[dict]] = {}
    for row in rows:
        if 'error' not in row:
            by_case.setdefault(row['case'], []).append(row)
    lines = ['| case | sizes | train time ~ N^p | train mem ~ N^p | infer mem ~ N^p |',
             '|---|---|---|---|---|']
    for case, items in by_case.items():
        items.sort(key=lambda r: r['size'])
        if len(items) < 2:
            continue
        a, b = items[0], items[-1]
        ratio_n = (b['size'] / a['size']) ** 2

        def p(key):
            if key not in a or a[key] <= 0 or b[key] <= 0:
                return '-'
            return f'{math.log(b[key] / a[key]) / math.log(ratio_n):.2f}'
        lines.append(f"| {case} | {a['size']}->{b['size']} | {p('train_s')} | "
                     f"{p('train_mem_mb')} | {p('infer_mem_mb')} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cases', nargs='+', help=f'case families (default: all of '
                        f'{list_families()})')
    parser.add_argument('--only', nargs='+', help='run only these case names')
    parser.add_argument('--size', type=int, default=128, help='feature-map side (H = W)')
    parser.add_argument('--sizes', type=int, nargs='+', help='sweep several sides')
    parser.add_argument('--in-channels', type=int, default=512)
    parser.add_argument('--channels', type=int, default=512)
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--no-macs', dest='macs', action='store_false')
    parser.add_argument('--no-train', dest='train', action='store_false')
    parser.add_argument('--timeout', type=int, default=1200, help='seconds per case')
    parser.add_argument('--out-dir', default=osp.join(ROOT, 'work_dirs', 'benchmark'))
    parser.add_argument('--run-case', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.run_case:
        family, name = args.run_case.split(':', 1)
        print(json.dumps(run_case(family, name, args)))
        return 0
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('error: --device cuda but torch.cuda.is_available() is False')
    families = args.cases or list_families()
    unknown = sorted(set(families) - set(list_families()))
    if unknown:
        raise SystemExit(f'error: unknown --cases {unknown}; available: {list_families()}')
    plan = []
    for family in families:
        for name in load_cases(family, args.in_channels, args.channels):
            if not args.only or name in args.only:
                plan.append((family, name))
    rows = []
    for size in args.sizes or [args.size]:
        for family, name in plan:
            row = spawn_case(family, name, size, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    add_ratios(rows)
    md_path, csv_path = write_outputs(rows, args.out_dir)
    print('\n' + to_markdown(rows))
    if args.sizes and len(args.sizes) > 1:
        print('\n' + growth_table(rows))
    print(f'\nwritten: {md_path} {csv_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
