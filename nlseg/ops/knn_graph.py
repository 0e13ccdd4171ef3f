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
bilateral weight; self loops are excluded, ties go to the lower index, and the neighbours of a
row are returned in index order. Both paths are exact (:mod:`nlseg.ops.knn_search`: one
distance computed one way; tested equal index for index):

- ``impl='dense'`` searches all N positions per row (a matrix product proposes candidates,
  exact distances decide): O(B N^2 C) time, O(chunk_size N) memory.
- ``impl='efficient'`` searches a window around each position first and proves per row that
  no position outside it can be nearer (d_ij >= |p_i - p_j|^2 / (2 sigma_a)), widening the
  window for the rows it cannot prove and falling back to the dense search for the last
  few: O(B N r^2 C) for the rows proved at radius r.
- ``'auto'`` takes the window for maps of few channels (C <= 16: colours, logits of few
  classes) larger than 4 first windows, where nearly every row is proved; the dense search
  otherwise (L2-normalised features rarely satisfy the bound, :mod:`~nlseg.ops.knn_search`).

Memory O(B N k) for the graph.

The weights are differentiable with respect to ``feats`` and to the kernel parameters when
these are tensors that require grad (a learnable graph); the neighbour selection (``index``)
is not differentiable.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch

from nlseg.validation import check_choice, check_int
from .knn_search import default_window_radius, dense_knn, pair_distance, position_term, \
    windowed_knn

IMPLS = ('auto', 'dense', 'efficient')

__all__ = ['knn_graph', 'resolve_knn_impl']

Number = Union[float, torch.Tensor]

# default chunk budget of the weights: about 2**22 gathered feature entries (16 MiB) per chunk
_CHUNK_ENTRIES = 1 << 22
#: 'auto' takes the windowed search for maps of at most this many channels
WINDOW_MAX_CHANNELS = 16


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


def resolve_knn_impl(impl: str, n: int, channels: int, traced: bool = False,
                     k: int = 10) -> str:
    """'dense' or 'efficient' for ``impl`` ('auto': the window for C <= WINDOW_MAX_CHANNELS
    and N > 4 first windows, module docstring); 'dense' whenever traced."""
    check_choice('impl', impl, IMPLS)
    if traced:
        return 'dense'
    if impl != 'auto':
        return impl
    window = (2 * default_window_radius(k) + 1) ** 2
    return 'efficient' if channels <= WINDOW_MAX_CHANNELS and n > 4 * window else 'dense'


def _traced_search(fd: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, k: int,
                   sigma_a: Number, sigma_b: Number) -> torch.Tensor:
    """The search as one traceable graph (ONNX export, tracing, torch.compile): the N x N
    distances of :func:`~nlseg.ops.knn_search.pair_distance` and a top-k (ties to the lower
    index in ONNX's TopK), sorted by index as the other paths."""
    n = ys.shape[0]
    dp2 = (ys[:, None] - ys[None, :]).square() + (xs[:, None] - xs[None, :]).square()
    d = pair_distance(fd[:, :, :, None].transpose(0, 1), fd[:, :, None, :].transpose(0, 1),
                      position_term(dp2, 1.0 / (2.0 * sigma_a), fd.dtype),
                      1.0 / (2.0 * sigma_b))
    idx = torch.arange(n, device=d.device)
    d = d.masked_fill(idx[:, None] == idx[None, :], float('inf'))  # no self loops
    return torch.topk(d, k, dim=2, largest=False, sorted=True).indices.sort(dim=2).values


def knn_graph(feats: torch.Tensor,
              k: int = 10,
              lambda1: Number = 1.0,
              lambda2: Number = 0.5,
              sigma_a: Number = 40.0,
              sigma_b: Number = 13.0 / 255.0,
              sigma_g: Number = 3.0,
              chunk_size: Optional[int] = None,
              impl: str = 'auto',
              window_radius: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Build the weighted kNN graph of a feature map.

    Args:
        feats: (B, C, H, W) features (the colour image in the paper).
        k: neighbours per position, 1 <= k < H * W.
        lambda1, lambda2: weights of the bilateral and the spatial kernel (>= 0).
        sigma_a, sigma_b, sigma_g: positive scales of the position, feature and spatial terms.
            Any of the five may be a 0-dim tensor requiring grad.
        chunk_size: query rows per chunk of the dense search (default: about 2**22
            distances a chunk) and of the weights.
        impl: 'dense', 'efficient' (the windowed search) or 'auto' (module docstring); all
            give the same graph. Exporting (ONNX), tracing or compiling always uses a
            one-shot dense search (no data-dependent control flow).
        window_radius: radius r of the first window of the windowed search (default
            :func:`~nlseg.ops.knn_search.default_window_radius`: 3 for k <= 20).

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
    if chunk_size is not None and (isinstance(chunk_size, bool) or
                                   not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f'chunk_size must be a positive int or None, got {chunk_size!r}')
    check_choice('impl', impl, IMPLS)
    if window_radius is not None:
        check_int('window_radius', window_radius)
    traced = (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
              or torch.compiler.is_compiling())
    impl = resolve_knn_impl(impl, n, c, traced, k)

    device = feats.device
    dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=device.type, enabled=False):
        f = feats.to(dtype).flatten(2).transpose(1, 2)  # (B, N, C)
        # row and column of every position, row-major (written with expand, not
        # repeat_interleave, whose export with a symbolic H, W onnxruntime rejects)
        ys = torch.arange(h, device=device, dtype=dtype).view(h, 1).expand(h, w).reshape(n)
        xs = torch.arange(w, device=device, dtype=dtype).view(1, w).expand(h, w).reshape(n)
        pos = torch.stack([ys, xs], dim=1)  # (N, 2)

        # neighbour selection: no gradient, exact (knn_search)
        with torch.no_grad():
            fd = f.detach().transpose(1, 2)  # (B, C, N)
            if traced:
                index = _traced_search(fd, ys, xs, k, sigma_a, sigma_b)
            else:
                if not bool(torch.isfinite(fd).all()):
                    raise ValueError('feats must be finite: the kNN graph of a map with NaN '
                                     'or inf values is undefined')
                inv_a, inv_b = 1.0 / (2.0 * sa), 1.0 / (2.0 * sb)
                found = []
                for image in fd:
                    if impl == 'dense':
                        _, nearest = dense_knn(image, h, w, k, inv_a, inv_b,
                                               chunk_size=chunk_size)
                    else:
                        _, nearest, _ = windowed_knn(image, h, w, k, inv_a, inv_b,
                                                     radius=window_radius,
                                                     chunk_size=chunk_size)
                    found.append(nearest)
                index = torch.stack(found)
        if chunk_size is None:
            chunk_size = max(1, min(n, _CHUNK_ENTRIES // max(k * c * b, 1)))
        if traced:
            chunk_size = n  # one chunk: a loop over chunks would fix N (H, W) at trace time

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
