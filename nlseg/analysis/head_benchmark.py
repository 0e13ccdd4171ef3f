"""Head benchmark: parameters, MACs, peak memory and time of one training step and one
inference, for every nlseg head and mmseg's own heads as anchors, each in its own process.

Cases come from ``nlseg/analysis/bench_cases/<family>.py`` (``cases(in_channels, channels)``
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
import json
import os.path as osp
import sys
from typing import Optional

from nlseg.analysis.benchmark import ROOT, PeakMemory, list_families, load_cases, \
    markdown_table, spawn_json, timed, write_table

__all__ = ['ANCHOR', 'METRICS', 'run_case', 'spawn_case', 'add_ratios', 'to_markdown',
           'write_outputs', 'growth_table', 'parse_args', 'main', 'list_families',
           'load_cases']

ANCHOR = 'mmseg_nlhead'


# ----------------------------------------------------------------------------- child side
def _is_head(module) -> bool:
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    return isinstance(module, BaseDecodeHead)


def _call(module, x):
    out = module([x]) if _is_head(module) else module(x)
    # DAHead returns (pam_cam, pam, cam) in training: the first is the segmentation output
    return out[0] if isinstance(out, (tuple, list)) else out


def run_case(family: str, name: str, args: argparse.Namespace) -> dict:
    """Measure one case in this process (``args``: :func:`parse_args`'s): parameters,
    MACs (unless ``--no-macs``), time and peak memory of a training step (unless
    ``--no-train``) and of an inference."""
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
    memory = PeakMemory(device)

    if args.train:
        module.train()

        def train_step():
            module.zero_grad(set_to_none=True)
            out = _call(module, x)
            out.float().square().mean().backward()

        train_step()  # first call allocates the gradients: not part of the step's peak
        memory.start()
        result['train_s'] = timed(train_step, device, args.warmup, args.repeats)
        result['train_mem_mb'] = memory.peak_mb()
        module.zero_grad(set_to_none=True)

    module.eval()

    def infer():
        with torch.no_grad():
            _call(module, x)

    infer()
    memory.start()
    result['infer_s'] = timed(infer, device, args.warmup, args.repeats)
    result['infer_mem_mb'] = memory.peak_mb()
    return result


# ---------------------------------------------------------------------------- parent side
METRICS = [('params_m', 'params (M)', '{:.3f}'), ('macs_g', 'MACs mmengine (G)', '{:.2f}'),
           ('macs_all_g', 'MACs all (G)', '{:.2f}'),
           ('train_s', 'train step (s)', '{:.3f}'), ('train_mem_mb', 'train peak (MB)', '{:.0f}'),
           ('infer_s', 'inference (s)', '{:.3f}'), ('infer_mem_mb', 'infer peak (MB)', '{:.0f}')]
RATIO_KEYS = ['train_s', 'train_mem_mb', 'infer_s', 'infer_mem_mb']


def spawn_case(family: str, name: str, size: int, args: argparse.Namespace) -> dict:
    """:func:`run_case` in a fresh process (``python -m nlseg.analysis.head_benchmark
    --run-case family:name``); its row, or the case with an ``error``."""
    cmd = [sys.executable, '-m', 'nlseg.analysis.head_benchmark', '--run-case',
           f'{family}:{name}', '--size', str(size),
           '--in-channels', str(args.in_channels), '--channels', str(args.channels),
           '--device', args.device, '--warmup', str(args.warmup),
           '--repeats', str(args.repeats)]
    cmd += [] if args.macs else ['--no-macs']
    cmd += [] if args.train else ['--no-train']
    return spawn_json(cmd, args.timeout, dict(family=family, case=name, size=size))


def add_ratios(rows: list[dict]) -> None:
    """Add ``<key>_ratio``: each time and memory over the anchor's at the same size."""
    anchors = {r['size']: r for r in rows if r['case'] == ANCHOR and 'error' not in r}
    for row in rows:
        anchor = anchors.get(row['size'])
        for key in RATIO_KEYS:
            if anchor and key in row and anchor.get(key):
                row[f'{key}_ratio'] = row[key] / anchor[key]


def to_markdown(rows: list[dict]) -> str:
    """The markdown table of the rows (figures, then the ratios to the anchor)."""
    header = ['case', 'size'] + [label for _, label, _ in METRICS] + [
        f'{k} / NLHead' for k in ('train', 'train mem', 'infer', 'infer mem')]
    lines = []
    for row in rows:
        if 'error' in row:
            lines.append(f"| {row['case']} | {row['size']} | " +
                         f"error: {row['error']} |" + ' |' * (len(header) - 3))
            continue
        cells = [row['case'], str(row['size'])]
        cells += [fmt.format(row[k]) if k in row else '-' for k, _, fmt in METRICS]
        cells += [f"{row[k + '_ratio']:.2f}x" if k + '_ratio' in row else '-'
                  for k in RATIO_KEYS]
        lines.append(cells)
    return markdown_table(header, lines)


def write_outputs(rows: list[dict], out_dir: str) -> tuple[str, str]:
    """``benchmark.md`` and ``benchmark.csv`` in ``out_dir``; returns their paths."""
    keys = ['family', 'case', 'size'] + [k for k, _, _ in METRICS] + [
        f'{k}_ratio' for k in RATIO_KEYS] + ['error']
    return write_table(rows, out_dir, to_markdown(rows), keys)


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

        def p(key, a=a, b=b, ratio_n=ratio_n):
            if key not in a or a[key] <= 0 or b[key] <= 0:
                return '-'
            return f'{math.log(b[key] / a[key]) / math.log(ratio_n):.2f}'
        lines.append(f"| {case} | {a['size']}->{b['size']} | {p('train_s')} | "
                     f"{p('train_mem_mb')} | {p('infer_mem_mb')} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line of ``tools/analysis/benchmark_heads.py``."""
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
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


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark (or, with ``--run-case``, one case) and print the tables."""
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
