"""Nonlocal (graph) gradient and divergence on a sparse k-nearest-neighbour graph.

Jia, Tai, Liu, "Nonlocal regularized CNN for image segmentation", eq. 13-16.

A graph over ``N`` vertices is stored as two tensors of shape ``(B, N, k)``: ``index[b, i, m]``
is the ``m``-th neighbour ``j`` of vertex ``i`` and ``weight[b, i, m]`` is ``w_ij``. Edges are
directed (a kNN graph is not symmetric in general). The gradient is eq. 13,

    (grad_w u)(i, m) = w_ij (u_j - u_i),          j = index[i, m],

and the divergence is defined as its exact negative adjoint, <grad_w u, v> = -<u, div_w v>:

    (div_w v)(n) = sum_m w_nm v(n, m)  -  sum_{(i, m): index[i, m] = n} w_im v(i, m),

i.e. the outgoing edges of ``n`` minus the incoming edges scattered onto ``n``. On a symmetric
graph with symmetric weights this is eq. 16, sum_j w_ij (v(i, j) - v(j, i)).
"""
from __future__ import annotations

import torch

__all__ = ['graph_gradient', 'graph_divergence', 'graph_operator_norm', 'graph_norm_bound']


def _check_graph(index: torch.Tensor, weight: torch.Tensor, batch: int, num_nodes: int) -> None:
    if index.dim() != 3 or index.shape != weight.shape:
        raise ValueError(f'index and weight must both have shape (B, N, k), got '
                         f'index {tuple(index.shape)} and weight {tuple(weight.shape)}')
    if index.dtype != torch.long:
        raise ValueError(f'index must be a torch.long tensor, got {index.dtype}')
    if index.shape[0] != batch or index.shape[1] != num_nodes:
        raise ValueError(f'the graph has shape (B, N, k) = {tuple(index.shape)} but the signal '
                         f'has B = {batch}, N = {num_nodes}')


def _flat_index(index: torch.Tensor, channels: int) -> torch.Tensor:
    b, n, k = index.shape
    return index.reshape(b, 1, n * k).expand(b, channels, n * k)


def graph_gradient(u: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Nonlocal gradient (eq. 13): ``u`` (B, K, N) -> (B, K, N, k), w_ij (u_j - u_i).

    Cost O(B K N k) time and memory (one gather).
    """
    if u.dim() != 3:
        raise ValueError(f'u must have shape (B, K, N), got {tuple(u.shape)}')
    b, c, n = u.shape
    _check_graph(index, weight, b, n)
    k = index.shape[2]
    u_nb = torch.gather(u, 2, _flat_index(index, c)).view(b, c, n, k)
    return weight.unsqueeze(1) * (u_nb - u.unsqueeze(-1))


def graph_divergence(v: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Nonlocal divergence, the exact negative adjoint of :func:`graph_gradient`.

    ``v`` (B, K, N, k) -> (B, K, N): outgoing edges summed minus incoming edges scattered
    (``scatter_add``). Cost O(B K N k) time and memory.
    """
    if v.dim() != 4:
        raise ValueError(f'v must have shape (B, K, N, k), got {tuple(v.shape)}')
    b, c, n, k = v.shape
    _check_graph(index, weight, b, n)
    if index.shape[2] != k:
        raise ValueError(f'v has k = {k} edges per node but the graph has {index.shape[2]}')
    wv = weight.unsqueeze(1) * v
    incoming = torch.zeros(b, c, n, dtype=wv.dtype, device=wv.device)
    incoming = incoming.scatter_add(2, _flat_index(index, c), wv.reshape(b, c, n * k))
    return wv.sum(-1) - incoming


@torch.no_grad()
def graph_operator_norm(index: torch.Tensor, weight: torch.Tensor, iters: int = 50,
                        seed: int = 0) -> torch.Tensor:
    """Estimate ||grad_w||^2 (per batch element, shape (B,)) by power iteration on
    -div_w grad_w. Used to check the step-size condition of the solver."""
    b, n, _ = index.shape
    g = torch.Generator(device='cpu').manual_seed(seed)
    u = torch.randn(b, 1, n, generator=g, dtype=torch.float64).to(index.device)
    w = weight.detach().to(torch.float64)
    est = torch.zeros(b, dtype=torch.float64, device=index.device)
    for _ in range(iters):
        u = u / u.flatten(1).norm(dim=1).clamp_min(1e-300).view(b, 1, 1)
        lu = -graph_divergence(graph_gradient(u, index, w), index, w)
        est = (u * lu).flatten(1).sum(1)
        u = lu
    return est


def graph_norm_bound(index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A cheap upper bound on ||grad_w||^2, per batch element (shape (B,)).

    ||grad_w u||^2 = sum_(i,m) w_im^2 (u_j - u_i)^2 <= 2 sum_i u_i^2 (out_i + in_i) with
    out_i, in_i the sums of w^2 over the outgoing and incoming edges of i, so
    ||grad_w||^2 <= 2 max_i (out_i + in_i). Cost O(B N k).
    """
    w2 = weight.detach().square()
    b, n, k = index.shape
    incoming = torch.zeros(b, n, dtype=w2.dtype, device=w2.device)
    incoming = incoming.scatter_add(1, index.reshape(b, n * k), w2.reshape(b, n * k))
    return 2.0 * (w2.sum(-1) + incoming).amax(dim=1)
