"""Benchmark of the NLTV-regularised softmax parts, each measurement in a fresh process.

    python tools/analysis/benchmark_nltv.py [--device cpu] [--threads N] [--skip-large]

Prints (markdown):
1. kNN graph construction (features C = 512 and C = 21) and 10 solver iterations at a 64 x 64
   logit map, K = 21 classes, k = 10 (median time of 3 runs after a warm-up).
2. Peak memory and time of one training step at 64 x 64, K = 21, k = 10, for train_iters
   1, 5, 10 and grad = 'bptt' | 'one_step': of NLTVSoftmax (graph from C = 512
   features, learnt through the weights, forward + backward of a loss on log A), and of the
   solver alone (graph built beforehand, gradient to the logits only).
3. Peak memory of graph construction at a 128 x 256 map (Cityscapes at output stride 8),
   C = 512 and C = 19, k = 10, no autograd (the 1 GB budget on CPU).
Memory: peak = on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs)
above the resident set before the measured call (inputs allocated, first call in the
process), on CUDA torch.cuda.max_memory_allocated above the allocation before the call;
saved = bytes of the distinct storages autograd saves for backward (deterministic).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import statistics
import subprocess
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from benchmark_heads import _Memory as Memory  # noqa: E402  (the head harness's peak memory)


def _sync(device):
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def measure_step(forward, mem, device) -> dict:
    """Peak memory of the first training step (forward, loss, backward) in this fresh process,
    the bytes autograd saves for backward, and the time of a second step."""
    import torch
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    def step():
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = forward()
        out.float().square().mean().backward()

    mem.start()
    step()
    mb = mem.peak_mb()
    t0 = time.perf_counter()
    step()
    _sync(device)
    return dict(mb=mb, saved_mb=sum(saved.values()) / 2**20,
                ms=(time.perf_counter() - t0) * 1e3)


def child(spec: dict) -> dict:
    import torch
    from nlseg.models import NLTVSoftmax
    from nlseg.ops import knn_graph, nltv_softmax

    torch.manual_seed(0)
    if spec.get('threads'):
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    h, w, c, ncls, k = spec['h'], spec['w'], spec['c'], spec['classes'], spec['k']
    feats = torch.randn(1, c, h, w, device=device)
    logits = torch.randn(1, ncls, h, w, device=device)
    mem = Memory(device)
    kind = spec['kind']
    if kind == 'graph_time':
        with torch.no_grad():
            return dict(ms=timed(lambda: knn_graph(feats, k=k), device))
    if kind == 'solver_time':
        index, weight = knn_graph(feats, k=k)
        with torch.no_grad():
            return dict(ms=timed(lambda: nltv_softmax(logits, index, weight, iters=10,
                                                      tol=None), device))
    if kind == 'graph_memory':
        mem.start()
        with torch.no_grad():
            t0 = time.perf_counter()
            knn_graph(feats, k=k)
            _sync(device)
            ms = (time.perf_counter() - t0) * 1e3
        return dict(mb=mem.peak_mb(), ms=ms)
    if kind == 'train_step':
        block = NLTVSoftmax(k=k, train_iters=spec['iters'], grad=spec['grad'],
                            feature_norm='l2').to(device).train()
        feats.requires_grad_(True)
        logits.requires_grad_(True)
        return measure_step(lambda: block(logits, feats, log=True), mem, device)
    if kind == 'solver_step':
        index, weight = knn_graph(feats, k=k)
        logits.requires_grad_(True)
        return measure_step(lambda: nltv_softmax(logits, index, weight, iters=spec['iters'],
                                                 tol=None, grad=spec['grad'], log=True),
                            mem, device)
    raise ValueError(kind)


def spawn(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, '--child', json.dumps(spec)],
                         capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--skip-large', action='store_true',
                        help='skip the 128 x 256 graph construction (minutes on CPU)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    base = dict(device=args.device, threads=args.threads, k=10)
    small = dict(base, h=64, w=64, classes=21)
    print(f'## NLTV benchmark (device {args.device}, each figure in a fresh process)\n')
    print('### 64 x 64 map, K = 21, k = 10 (median of 3 after a warm-up)\n')
    print('| part | time (ms) |\n|---|---|')
    for c in (512, 21):
        r = spawn(dict(small, c=c, kind='graph_time'))
        print(f'| knn_graph, C = {c} features | {r["ms"]:.1f} |')
    r = spawn(dict(small, c=512, kind='solver_time'))
    print(f'| nltv_softmax, 10 iterations | {r["ms"]:.1f} |')
    print('\n### One training step of NLTVSoftmax at 64 x 64, K = 21, k = 10, C = 512\n')
    print('| train_iters | grad | block: peak (MB) | block: saved (MB) | block: time (ms) '
          '| solver: peak (MB) | solver: saved (MB) | solver: time (ms) |')
    print('|---|---|---|---|---|---|---|---|')
    for iters in (1, 5, 10):
        for grad in ('bptt', 'one_step'):
            r = spawn(dict(small, c=512, kind='train_step', iters=iters, grad=grad))
            s = spawn(dict(small, c=512, kind='solver_step', iters=iters, grad=grad))
            print(f'| {iters} | {grad} | {r["mb"]:.1f} | {r["saved_mb"]:.1f} | {r["ms"]:.0f} '
                  f'| {s["mb"]:.1f} | {s["saved_mb"]:.1f} | {s["ms"]:.0f} |')
    if args.skip_large:
        return 0
    print('\n### Graph construction at 128 x 256 (no autograd), k = 10\n')
    print('| C | peak memory (MB) | time (ms) |\n|---|---|---|')
    for c in (512, 19):
        r = spawn(dict(base, h=128, w=256, c=c, classes=19, kind='graph_memory'))
        print(f'| {c} | {r["mb"]:.1f} | {r["ms"]:.0f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
