"""NLTVSoftmax: the NLTV-regularised softmax of Jia, Tai, Liu as an ``nn.Module``.

Builds the kNN graph of eq. 11 online from a feature map (or the logits), or takes the
4-neighbour pixel grid with unit weights (``graph='grid'``: the LOCAL TV-regularised softmax of
the paper's ref. [10], its RUnet / RSegnet rows), and runs the
primal-dual iteration of eq. 28/35 (:func:`nlseg.ops.nltv_softmax`). In training it unrolls
``train_iters`` iterations (sec. 3.5: "one or a few steps"), at test time it iterates until the
relative duality gap reaches ``tol`` (eq. 31), at most ``test_iters`` or 1500 iterations.
With ``learnable_graph=True`` the five kernel parameters of eq. 11 are learnt (stored as
logarithms, so they stay positive): the paper's stated future work.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from nlseg.ops.grid_graph import grid_graph
from nlseg.ops.knn_graph import IMPLS, knn_graph
from nlseg.ops.gradient_modes import resolve_grad_mode
from nlseg.ops.nltv_softmax import check_solver_args, nltv_softmax
from nlseg.validation import check_bool, check_choice, check_feature_map, check_int, \
    check_real

__all__ = ['NLTVSoftmax']

FEATURE_NORMS = (None, 'l2')
GRAPHS = ('knn', 'grid')
GRAPH_PARAMS = ('lambda1', 'lambda2', 'sigma_a', 'sigma_b', 'sigma_g')


class NLTVSoftmax(nn.Module):
    """kNN graph + NLTV-regularised softmax.

    Args:
        k: neighbours per position (paper: 10 on CamVid, 20 on WBC).
        lam, tau, eps: solver parameters (paper: 3, 0.03, 0.5); tau may be 'auto'.
        train_iters: iterations unrolled in training (>= 0).
        test_iters: at most this many iterations in eval mode; None: ``max_iters``.
        max_iters: the cap used when ``test_iters`` is None (paper: 1500); a non-default
            value beside a ``test_iters`` has no effect and warns.
        tol: relative duality gap stopping test in eval mode (None: run all iterations).
        grad: 'bptt' (back-propagation through every unrolled iteration, the paper's
            sec. 3.4) or 'one_step' (through the last iteration only), the vocabulary of the
            hams (:mod:`nlseg.ops.gradient_modes`); the deprecated 'unrolled' / 'last_step'
            still work with a DeprecationWarning.
        lambda1, lambda2, sigma_a, sigma_b, sigma_g: eq. 11 parameters (paper values).
        learnable_graph: learn the eq. 11 parameters (all must then be > 0).
        feature_norm: None, or 'l2' to L2-normalise each position's feature vector before
            the graph is built (network features have an arbitrary scale; sigma_b is set for
            colours in [0, 1], and |f_i - f_j|^2 is in [0, 4] after 'l2').
        detach_graph: build the graph from detached features (no gradient through weights
            into the features).
        chunk_size: query rows per chunk of the graph construction.
        graph: 'knn' (eq. 11 from the features: NLTV) or 'grid' (each pixel linked to its 4
            geometric neighbours with weight 1: the local TV of the paper's ref. [10]; no
            features needed, ``k`` and the eq. 11 arguments unused).
        impl: the kNN search, 'auto', 'dense' or 'efficient' (the exact windowed search,
            :func:`~nlseg.ops.knn_graph`); every choice gives the same graph.
        check_every: in eval mode, test the duality-gap stop every this many iterations
            (default 10: the gap's energies cost as much as an iteration; the solve may run
            up to check_every - 1 iterations past the first that meets ``tol``).
    """

    def __init__(self,
                 k: int = 10,
                 lam: float = 3.0,
                 tau: Union[float, str] = 0.03,
                 eps: float = 0.5,
                 train_iters: int = 3,
                 test_iters: Optional[int] = None,
                 max_iters: int = 1500,
                 tol: Optional[float] = 1e-5,
                 grad: str = 'bptt',
                 lambda1: float = 1.0,
                 lambda2: float = 0.5,
                 sigma_a: float = 40.0,
                 sigma_b: float = 13.0 / 255.0,
                 sigma_g: float = 3.0,
                 learnable_graph: bool = False,
                 feature_norm: Optional[str] = None,
                 detach_graph: bool = False,
                 chunk_size: Optional[int] = None,
                 graph: str = 'knn',
                 impl: str = 'auto',
                 check_every: int = 10) -> None:
        super().__init__()
        check_choice('graph', graph, GRAPHS)
        check_choice('impl', impl, IMPLS)
        check_int('check_every', check_every)
        if graph == 'grid' and learnable_graph:
            raise ValueError("learnable_graph=True needs graph='knn' (the grid graph of "
                             "graph='grid' has fixed unit weights)")
        check_int('k', k)
        check_real('lam', lam)
        if not isinstance(tau, str):
            check_real('tau', tau)
        check_real('eps', eps)
        check_solver_args(lam, tau, eps)
        check_int('train_iters', train_iters, min_value=0)
        check_int('max_iters', max_iters, min_value=0)
        if test_iters is not None:
            check_int('test_iters', test_iters, min_value=0)
        if tol is not None:
            check_real('tol', tol, low=0)
        grad = resolve_grad_mode(grad, 'NLTVSoftmax')
        if test_iters is not None and max_iters != 1500:
            warnings.warn(f'NLTVSoftmax: max_iters={max_iters} has no effect with '
                          f'test_iters={test_iters} (max_iters is the eval cap only when '
                          f'test_iters is None)', UserWarning, stacklevel=2)
        check_choice('feature_norm', feature_norm, FEATURE_NORMS)
        check_bool('learnable_graph', learnable_graph)
        check_bool('detach_graph', detach_graph)
        if chunk_size is not None:
            check_int('chunk_size', chunk_size)
        values = dict(lambda1=lambda1, lambda2=lambda2, sigma_a=sigma_a, sigma_b=sigma_b,
                      sigma_g=sigma_g)
        for name, value in values.items():
            strict = learnable_graph or name.startswith('sigma')
            when = ' (learnable_graph=True)' if strict and name.startswith('lambda') else ''
            check_real(name + when, value, low=0, low_open=strict)
        self.k = k
        self.lam = float(lam)
        self.tau = tau if isinstance(tau, str) else float(tau)
        self.eps = float(eps)
        self.train_iters = train_iters
        self.test_iters = test_iters
        self.max_iters = max_iters
        self.tol = tol
        self.grad = grad
        self.learnable_graph = learnable_graph
        self.feature_norm = feature_norm
        self.detach_graph = detach_graph
        self.chunk_size = chunk_size
        self.graph = graph
        self.impl = impl
        self.check_every = check_every
        if learnable_graph:
            self.log_graph_params = nn.ParameterDict(
                {name: nn.Parameter(torch.tensor(math.log(float(v)))) for name, v in
                 values.items()})
        else:
            self._graph_values = {name: float(v) for name, v in values.items()}

    def graph_params(self) -> dict:
        """The eq. 11 parameters (tensors when learnable)."""
        if self.learnable_graph:
            return {name: self.log_graph_params[name].exp() for name in GRAPH_PARAMS}
        return dict(self._graph_values)

    def build_graph(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) features -> (index, weight), each (B, H * W, k) (k = 4 for the grid,
        which reads only the features' batch size, spatial size, device and dtype)."""
        if self.graph == 'grid':
            b, _, h, w = feats.shape
            dtype = torch.float64 if feats.dtype == torch.float64 else torch.float32
            return grid_graph(b, h, w, device=feats.device, dtype=dtype)
        if self.detach_graph:
            feats = feats.detach()
        if self.feature_norm == 'l2':
            feats = F.normalize(feats.float(), dim=1)
        return knn_graph(feats, k=self.k, chunk_size=self.chunk_size, impl=self.impl,
                         **self.graph_params())

    def forward(self, logits: torch.Tensor, feats: Optional[torch.Tensor] = None,
                log: bool = False) -> torch.Tensor:
        """Regularised probabilities (or log-probabilities) of ``logits`` (B, K, H, W).

        ``feats`` (B, C, H, W) builds the graph; None uses the logits themselves. Both must be
        non-empty floating maps (B, H, W >= 1) of the same batch and spatial size, with
        k < H * W; otherwise a ValueError/TypeError is raised before any work.
        """
        check_feature_map(logits, 'NLTVSoftmax', name='logits')
        if feats is None:
            feats = logits
        else:
            check_feature_map(feats, 'NLTVSoftmax', name='feats')
        if feats.shape[0] != logits.shape[0] or feats.shape[2:] != logits.shape[2:]:
            raise ValueError(f'feats {tuple(feats.shape)} and logits {tuple(logits.shape)} '
                             f'must be (B, C, H, W) maps of the same batch and spatial size')
        n = logits.shape[2] * logits.shape[3]
        if self.graph == 'knn' and self.k >= n:
            raise ValueError(f'k must be an int with 1 <= k < N = H * W = {n}, got {self.k} '
                             f'(input of shape {tuple(logits.shape)})')
        index, weight = self.build_graph(feats)
        if self.training:
            iters, tol = self.train_iters, None
        else:
            iters = self.max_iters if self.test_iters is None else self.test_iters
            tol = self.tol
        return nltv_softmax(logits, index, weight, lam=self.lam, tau=self.tau, eps=self.eps,
                            iters=iters, tol=tol, grad=self.grad, log=log,
                            check_every=self.check_every)

    def extra_repr(self) -> str:
        return (f'graph={self.graph!r}, k={self.k}, lam={self.lam}, tau={self.tau}, '
                f'eps={self.eps}, '
                f'train_iters={self.train_iters}, test_iters={self.test_iters}, '
                f'grad={self.grad!r}, learnable_graph={self.learnable_graph}, '
                f'feature_norm={self.feature_norm!r}')
