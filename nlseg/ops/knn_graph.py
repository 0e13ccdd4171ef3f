"""k-nearest-neighbour graph over the positions of a feature map, weighted by eq. 11.

Jia, Tai, Liu, "Nonlocal regularized CNN for image segmentation", eq. 11, sec. 3.5, with the
feature vector of a position in place of its colour:

    w_ij = lambda1 exp(-|p_i - p_j|^2 / (2 sigma_a) - |f_i - f_j|^2 / (2 sigma_b))
         + lambda2 exp(-|p_i - p_j|^2 / (2 sigma_g)),

``p`` the (row, column) position in pixel units of the map, ``f`` the feature vector. The paper
values are lambda1 = 1, lambda2 = 0.5, sigma_a = 40, sigma_b = 13/255, sigma_g = 3 (for colours
in [0, 1]). The ``k`` neighbours of ``i`` are the ``k`` other positions with the smallest
distance

    d_ij = |p_i - p_j|^2 / (2 sigma_a) + |f_i - f_j|^2 / (2 sigma_b),

the exponent of the bilateral (first) kernel, so they are the positions with the largest
bilateral weight; self loops are excluded. Query rows are processed in chunks on the input's
device (``torch.topk``), so the largest temporary is (B, chunk_size, N), never N x N.
Cost: O(B N^2 (C + 1)) time for the distances, O(B N k C) for the weights; memory
O(B chunk_size N + B N k).

The weights are differentiable with respect to ``feats`` and to the kernel parameters when
these are tensors that require grad (a learnable graph); the neighbour selection (``index``)
is not differentiable.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

__all__ = ['knn_graph']

Number = Union[float, torch.Tensor]

# default chunk budget: about 2**24 distance entries (64 MiB in float32) per chunk
_CHUNK_ENTRIES = 1 << 24


def _as_float(name: str, value: Number, positive: bool) -> Number:
    if isinstance(value, torch.Tensor) and (torch.onnx.is_in_onnx_export()
                                            or torch.compiler.is_compiling()):
        # a learnt parameter (exp of a log: positive) is an input of the exported or compiled
        # graph, with no value to read (reading it would break the graph)
        return value.detach()
    v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    if positive and not v > 0:
        raise ValueError(f'{name} must be > 0, got {v}')
    if not positive and not v >= 0:
        raise ValueError(f'{name} must be >= 0, got {v}')
    return v


def knn_graph(feats: torch.Tensor,
              k: int = 10,
              lambda1: Number = 1.0,
              lambda2: Number = 0.5,
              sigma_a: Number = 40.0,
              sigma_b: Number = 13.0 / 255.0,
              sigma_g: Number = 3.0,
              chunk_size: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Build the weighted kNN graph of a feature map.

    Args:
        feats: (B, C, H, W) features (the colour image in the paper).
        k: neighbours per position, 1 <= k < H * W.
        lambda1, lambda2: weights of the bilateral and the spatial kernel (>= 0).
        sigma_a, sigma_b, sigma_g: positive scales of the position, feature and spatial terms.
            Any of the five may be a 0-dim tensor requiring grad.
        chunk_size: query rows per chunk; default keeps a chunk near 2**24 distances.

    Returns:
        ``index`` (B, N, k) long and ``weight`` (B, N, k) float32 (float64 for float64 input),
        with N = H * W in row-major order.
    """
    if not isinstance(feats, torch.Tensor) or feats.dim() != 4:
        raise ValueError(f'feats must be a (B, C, H, W) tensor, got '
                         f'{getattr(feats, "shape", type(feats))}')
    b, c, h, w = feats.shape
    n = h * w
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
        raise ValueError(f'k must be an int with 1 <= k < N = H * W = {n}, got {k!r}')
    _as_float('lambda1', lambda1, positive=False)
    _as_float('lambda2', lambda2, positive=False)
    sa = _as_float('sigma_a', sigma_a, positive=True)
    sb = _as_float('sigma_b', sigma_b, positive=True)
    _as_float('sigma_g', sigma_g, positive=True)
    if chunk_size is None:
        chunk_size = max(1, min(n, _CHUNK_ENTRIES // max(n * b, 1)))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive int or None, got {chunk_size!r}')
    if torch.onnx.is_in_onnx_export():
        chunk_size = n  # one chunk: a loop over chunks would fix N (H, W) at trace time

    device = feats.device
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=device.type, enabled=False):
        f = feats.to(dtype).flatten(2).transpose(1, 2)  # (B, N, C)
        # row and column of every position, row-major (written with expand, not
        # repeat_interleave, whose export with a symbolic H, W onnxruntime rejects)
        ys = torch.arange(h, device=device, dtype=dtype).view(h, 1).expand(h, w).reshape(n)
        xs = torch.arange(w, device=device, dtype=dtype).view(1, w).expand(h, w).reshape(n)
        pos = torch.stack([ys, xs], dim=1)  # (N, 2)

        # neighbour selection: no gradient, squared-norm expansion, chunked over query rows
        with torch.no_grad():
            fd = f.detach()
            sq = fd.square().sum(-1)  # (B, N)
            index_chunks = []
            for start in range(0, n, chunk_size):
                stop = min(start + chunk_size, n)
                q = fd[:, start:stop]  # (B, c, C)
                # |f_i|^2 + |f_j|^2 - 2 f_i.f_j, then / (2 sigma_b), all in place
                score = torch.baddbmm(sq[:, None, :], q, fd.transpose(1, 2), alpha=-2.0)
                score.add_(sq[:, start:stop, None]).clamp_min_(0).div_(2.0 * sb)
                # + |p_i - p_j|^2 / (2 sigma_a), exact (integer coordinates), separable
                dist_p = (ys[start:stop, None] - ys[None, :]).square_()
                dist_p.add_((xs[start:stop, None] - xs[None, :]).square_())
                if isinstance(sa, torch.Tensor):  # learnt sigma_a, exported or compiled
                    score.add_(dist_p / (2.0 * sa))
                else:
                    score.add_(dist_p, alpha=1.0 / (2.0 * sa))
                rows = torch.arange(stop - start, device=device)
                score[:, rows, rows + start] = float('inf')  # exclude self loops
                index_chunks.append(torch.topk(score, k, dim=2, largest=False,
                                               sorted=True).indices)
                del dist_p, score
            index = torch.cat(index_chunks, dim=1)

        # exact weights of the selected edges (differentiable in feats and parameters)
        weights = []
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            idx = index[:, start:stop]  # (B, c, k)
            nb = torch.gather(f, 1, idx.reshape(b, -1, 1).expand(-1, -1, c))
            nb = nb.view(b, stop - start, k, c)
            df2 = (nb - f[:, start:stop, None, :]).square().sum(-1)  # (B, c, k)
            dp2 = (pos[idx] - pos[start:stop, None, :]).square().sum(-1)
            weights.append(lambda1 * torch.exp(-dp2 / (2 * sigma_a) - df2 / (2 * sigma_b))
                           + lambda2 * torch.exp(-dp2 / (2 * sigma_g)))
        weight = torch.cat(weights, dim=1).to(dtype)
    return index, weight
