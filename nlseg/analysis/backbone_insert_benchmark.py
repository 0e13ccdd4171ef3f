"""Backbone-insert benchmark: peak memory and time of one training step of mmseg's dilated
ResNetV1c (output stride 8, the ``*_r50-d8`` backbone) with ONE non-local block inserted in
res2 (stride 4: 128 x 128 positions at 512 x 512) or res3 (stride 8: 64 x 64), nlseg's
``NonLocalBlock`` (impl='efficient') against mmcv's ``NonLocal2d`` (both embedded_gaussian,
reduction 2, scaled), plus the plain backbone as the baseline. Each case runs in a fresh
process; the block goes right before the last residual block of its stage (``before=-1``).

    python tools/analysis/benchmark_backbone_inserts.py                   # R-50-D8, 1x3x512x512
    python tools/analysis/benchmark_backbone_inserts.py --only plain nlseg_res2 --size 256

One training step: forward in training mode (BN batch statistics), loss = sum over the four
stage outputs of mean(out ** 2), backward. The first step allocates the gradients and is not
measured; then ``--repeats`` steps are timed (median). Memory
(:class:`nlseg.analysis.benchmark.PeakMemory`, as in the head benchmark): on CUDA
``torch.cuda.max_memory_allocated`` above the allocation before the timed steps; on CPU the
peak resident set (VmHWM, reset through /proc/self/clear_refs) above the resident set before
them (glibc's free heap released first). "affinity" is the size
of one float32 N x N affinity of the inserted block (batch x N^2 x 4 bytes): what a dense
non-local block materialises, several times over in its backward pass.
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from typing import Optional

from nlseg.analysis.benchmark import ROOT, PeakMemory, markdown_table, spawn_json, timed, \
    write_table

__all__ = ['CASES', 'block_cfg', 'backbone_cfg', 'run_case', 'spawn_case', 'add_extra_memory',
           'to_markdown', 'write_outputs', 'parse_args', 'main']

#: case -> (block type or None, stage)
CASES = {
    'plain': (None, None),
    'nlseg_res2': ('NonLocalBlock', 0),
    'mmcv_res2': ('NonLocal2d', 0),
    'nlseg_res3': ('NonLocalBlock', 1),
    'mmcv_res3': ('NonLocal2d', 1),
}
STAGE_STRIDES = (4, 8, 8, 8)  # the -d8 backbone: strides (1, 2, 1, 1), dilations (1, 1, 2, 4)


def block_cfg(block_type: str) -> dict:
    """The config of the inserted block (nlseg's or mmcv's)."""
    if block_type == 'NonLocalBlock':
        return dict(type='NonLocalBlock', reduction=2, use_scale=True, mode='embedded_gaussian',
                    impl='efficient')
    return dict(type='NonLocal2d', reduction=2, use_scale=True, mode='embedded_gaussian')


def backbone_cfg(case: str, depth: int) -> dict:
    """mmseg's ``_base_/models/*_r50-d8.py`` backbone (BN instead of SyncBN: one process)."""
    block_type, stage = CASES[case]
    cfg = dict(type='ResNetV1cWithInserts', depth=depth, num_stages=4, out_indices=(0, 1, 2, 3),
               dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
               norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
               contract_dilation=True)
    if block_type is not None:
        cfg['inserts'] = [dict(stage=stage, before=-1, block=block_cfg(block_type))]
    return cfg


# ----------------------------------------------------------------------------- child side
def run_case(case: str, args: argparse.Namespace) -> dict:
    """One training step of the case's backbone in this process: time and peak memory."""
    import torch
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401  (registers ResNetV1cWithInserts and the blocks)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = MODELS.build(backbone_cfg(case, args.depth)).to(device)
    block_type, stage = CASES[case]
    side = -(-args.size // STAGE_STRIDES[stage]) if stage is not None else 0
    result = dict(case=case, block=block_type or '-', stage=stage, size=args.size,
                  batch=args.batch, positions=side * side,
                  affinity_gib=args.batch * side ** 4 * 4 / 2**30,
                  params_m=sum(p.numel() for p in model.parameters()) / 1e6)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    model.train()

    def train_step():
        model.zero_grad(set_to_none=False)
        outs = model(x)
        sum(out.float().square().mean() for out in outs).backward()

    train_step()  # allocates the gradients: not part of the step's peak
    memory = PeakMemory(device)
    memory.start()
    result['train_s'] = timed(train_step, device, 0, args.repeats)
    result['train_mem_mb'] = memory.peak_mb()
    return result


# ---------------------------------------------------------------------------- parent side
COLUMNS = [('case', 'case', '{}'), ('block', 'inserted block', '{}'),
           ('stage', 'stage (0 = res2)', '{}'), ('positions', 'N at the block', '{}'),
           ('affinity_gib', 'one N x N affinity (GiB)', '{:.3f}'),
           ('params_m', 'params (M)', '{:.2f}'), ('train_s', 'train step (s)', '{:.2f}'),
           ('train_mem_mb', 'train peak (MB)', '{:.0f}'),
           ('extra_mem_mb', 'peak above plain (MB)', '{:.0f}')]


def spawn_case(case: str, args: argparse.Namespace) -> dict:
    """:func:`run_case` in a fresh process; its row, or the case with an ``error``."""
    cmd = [sys.executable, '-m', 'nlseg.analysis.backbone_insert_benchmark', '--run-case',
           case, '--size', str(args.size), '--depth', str(args.depth), '--batch',
           str(args.batch), '--device', args.device, '--repeats', str(args.repeats)]
    block_type, stage = CASES[case]
    base = dict(case=case, block=block_type or '-', stage=stage, size=args.size)
    return spawn_json(cmd, args.timeout, base)


def add_extra_memory(rows: list[dict]) -> None:
    """Add ``extra_mem_mb``: each training peak above the plain backbone's."""
    plain = next((r for r in rows if r['case'] == 'plain' and 'error' not in r), None)
    for row in rows:
        if plain is not None and 'train_mem_mb' in row:
            row['extra_mem_mb'] = row['train_mem_mb'] - plain['train_mem_mb']


def to_markdown(rows: list[dict]) -> str:
    """The markdown table of the rows (an error in the time column)."""
    lines = []
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            if key == 'train_s' and 'error' in row:
                cells.append(f"error: {row['error']}")
            elif row.get(key) is None:
                cells.append('-')
            else:
                cells.append(fmt.format(row[key]))
        lines.append(cells)
    return markdown_table([label for _, label, _ in COLUMNS], lines)


def write_outputs(rows: list[dict], out_dir: str) -> tuple[str, str]:
    """``benchmark.md`` and ``benchmark.csv`` in ``out_dir``; returns their paths."""
    keys = [k for k, _, _ in COLUMNS] + ['size', 'batch', 'error']
    return write_table(rows, out_dir, to_markdown(rows), keys)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    """The command line of ``tools/analysis/benchmark_backbone_inserts.py``."""
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--only', nargs='+', choices=list(CASES), help='run only these cases')
    parser.add_argument('--size', type=int, default=512, help='input side (H = W)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--depth', type=int, default=50, choices=(18, 34, 50, 101, 152))
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--repeats', type=int, default=2, help='timed steps (median)')
    parser.add_argument('--timeout', type=int, default=1800, help='seconds per case')
    parser.add_argument('--out-dir',
                        default=osp.join(ROOT, 'work_dirs', 'benchmark_backbone_inserts'))
    parser.add_argument('--run-case', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the benchmark (or, with ``--run-case``, one case) and print the table."""
    args = parse_args(argv)
    if args.run_case:
        print(json.dumps(run_case(args.run_case, args)))
        return 0
    if args.device.startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('error: --device cuda but torch.cuda.is_available() is False')
    rows = []
    for case in args.only or list(CASES):
        row = spawn_case(case, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    add_extra_memory(rows)
    md_path, csv_path = write_outputs(rows, args.out_dir)
    print('\n' + to_markdown(rows))
    print(f'\nwritten: {md_path} {csv_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
