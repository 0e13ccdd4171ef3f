"""Deployment benchmark: eager, torch.compile (inductor) and ONNX Runtime inference of every
nlseg head, with the graph breaks of torch.compile, on the CPU.

Cases are the heads (and Hamburger blocks) of ``nlseg/analysis/bench_cases/`` (families
``nonlocal``, ``hamburger``, ``nltv``; ``--cases`` picks families, ``--only`` names). For each
case, in eval mode on one (1, in_channels, size, size) input:

* eager: median inference time of the module under ``torch.no_grad()``;
* compiled: ``torch.compile`` (inductor), its first-call (compile) time, then the median
  inference time and the ratio eager / compiled (> 1: compiled is faster); graph breaks and
  graphs from ``torch._dynamo.explain``;
* ONNX: export with ``torch.onnx.export(dynamo=True)`` (dynamic H, W), ONNX Runtime CPU with
  the same thread count, median time and the ratio eager / ONNX Runtime, and the max abs
  difference of the ONNX Runtime output from eager.

NLTV cases run a fixed ``test_iters`` (tol=None, as exported graphs must).

    python tools/analysis/benchmark_deploy.py --size 32 --in-channels 64 --channels 32
    python tools/analysis/benchmark_deploy.py --cases nonlocal --only snl --threads 2
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import sys
import tempfile
import time
import traceback
from typing import Optional

import torch

from nlseg.analysis.benchmark import list_families, load_cases, markdown_table, timed

__all__ = ['DEFAULT_FAMILIES', 'COLUMNS', 'build_case', 'run_case', 'to_markdown',
           'parse_args', 'main']

DEFAULT_FAMILIES = ('nonlocal', 'hamburger', 'nltv')
COLUMNS = [('case', 'case'), ('eager_ms', 'eager ms'), ('compile_s', 'compile s'),
           ('compiled_ms', 'compiled ms'), ('compiled_ratio', 'eager/compiled'),
           ('graph_breaks', 'graph breaks'), ('graphs', 'graphs'),
           ('export_s', 'ONNX export s'), ('onnx_ms', 'ORT ms'), ('onnx_ratio', 'eager/ORT'),
           ('onnx_max_diff', 'ORT max abs diff'), ('error', 'error')]


def build_case(family: str, name: str, in_channels: int, channels: int) -> torch.nn.Module:
    """The case's module in eval mode as a module of one tensor (heads wrapped), with any
    NLTV stopping test turned off (a fixed ``test_iters``)."""
    import nlseg  # noqa: F401
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    from nlseg.deploy import FeatureMapHead
    from nlseg.models.blocks.nltv_softmax import NLTVSoftmax

    module = load_cases(family, in_channels, channels)[name]()
    for m in module.modules():
        if isinstance(m, NLTVSoftmax):
            m.tol = None
    if isinstance(module, BaseDecodeHead):
        module = FeatureMapHead(module)
    return module.eval()


def run_case(family: str, name: str, args: argparse.Namespace) -> dict:
    """Eager, compiled and ONNX Runtime figures of one case (``args``: :func:`parse_args`'s)."""
    import torch

    from nlseg.deploy import export_onnx, max_abs_diff, onnxruntime_session, run_onnxruntime

    row = dict(case=name)
    torch.manual_seed(0)
    module = build_case(family, name, args.in_channels, args.channels)
    x = torch.randn(1, args.in_channels, args.size, args.size)
    with torch.no_grad():
        ref = module(x)
        row['eager_ms'] = 1e3 * timed(lambda: module(x), None, args.warmup, args.repeats)
        if args.compile:
            torch._dynamo.reset()
            explain = torch._dynamo.explain(module)(x)
            row['graph_breaks'] = explain.graph_break_count
            row['graphs'] = explain.graph_count
            row['break_reasons'] = sorted({str(b.reason).splitlines()[0]
                                           for b in explain.break_reasons})
            torch._dynamo.reset()
            compiled = torch.compile(module)
            start = time.perf_counter()
            compiled(x)
            row['compile_s'] = time.perf_counter() - start
            row['compiled_ms'] = 1e3 * timed(lambda: compiled(x), None, args.warmup, args.repeats)
            row['compiled_ratio'] = row['eager_ms'] / row['compiled_ms']
    if args.onnx:
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, f'{name}.onnx')
            start = time.perf_counter()
            export_onnx(module, x, path, dynamic=True)
            row['export_s'] = time.perf_counter() - start
            session = onnxruntime_session(path, threads=args.threads)
            row['onnx_max_diff'] = max_abs_diff(run_onnxruntime(session, x), ref.numpy())
            row['onnx_ms'] = 1e3 * timed(lambda: run_onnxruntime(session, x), None,
                                         args.warmup, args.repeats)
            row['onnx_ratio'] = row['eager_ms'] / row['onnx_ms']
    return row


def _fmt(value) -> str:
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 1e-2 or abs(value) >= 1e4 else f'{value:.2f}'
    return str(value)


def to_markdown(rows: list[dict], args: argparse.Namespace) -> str:
    """The settings line, the markdown table and the graph break reasons."""
    lines = [f'Input 1x{args.in_channels}x{args.size}x{args.size}, channels {args.channels}, '
             f'{args.threads} thread(s), median of {args.repeats} runs after {args.warmup} '
             f'warm-up run(s).', '',
             markdown_table([title for _, title in COLUMNS],
                            [[_fmt(row.get(key)) for key, _ in COLUMNS] for row in rows])]
    reasons = [(row['case'], r) for row in rows for r in row.get('break_reasons', [])]
    if reasons:
        lines += ['', 'Graph break reasons:']
        lines += [f'- {case}: {reason}' for case, reason in reasons]
    return '\n'.join(lines)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line of ``tools/analysis/benchmark_deploy.py``."""
    families = list_families()
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--cases', nargs='+', default=list(DEFAULT_FAMILIES), choices=families,
                        help='case families')
    parser.add_argument('--only', nargs='+', help='run only these case names')
    parser.add_argument('--size', type=int, default=64, help='feature-map side (H = W)')
    parser.add_argument('--in-channels', type=int, default=512)
    parser.add_argument('--channels', type=int, default=512)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch and ONNX Runtime intra-op threads')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--no-compile', dest='compile', action='store_false')
    parser.add_argument('--no-onnx', dest='onnx', action='store_false')
    parser.add_argument('--out', help='also write the markdown table to this file')
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the cases and print (``--out``: also write) the table; 1 if a case failed."""
    args = parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    rows = []
    for family in args.cases:
        names = list(load_cases(family, 8, 8))
        for name in names:
            if args.only and name not in args.only:
                continue
            try:
                row = run_case(family, name, args)
            except Exception as e:  # report and go on with the next case
                traceback.print_exc(file=sys.stderr)
                first = re.sub(r'\x1b\[[0-9;]*m', '', str(e)).strip().splitlines()
                row = dict(case=name, error=f'{type(e).__name__}: {first[0]}' if first
                           else type(e).__name__)
            rows.append(row)
            print(' '.join(f'{k}={_fmt(v)}' for k, v in row.items() if k != 'break_reasons'),
                  flush=True)
    table = to_markdown(rows, args)
    print(table)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(table + '\n')
    return 1 if any(row.get('error') for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
