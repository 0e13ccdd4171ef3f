"""NLTV-regularised softmax: the primal-dual iteration of Jia, Tai, Liu (eq. 25-35, Alg. 1).

The regularised softmax is the minimiser over the per-pixel simplex S of (eq. 34)

    E_P(A) = sum_k -<A_k, o_k> + eps <A_k, log A_k> + lam NLTV_w(A_k),
    NLTV_w(A_k) = ||grad_w A_k||_1 = max_{|eta_k| <= 1} <A_k, div_w eta_k>      (eq. 26),

written as the saddle point problem (eq. 27) min_A max_{|eta| <= lam} L(A, eta) with
L(A, eta) = sum_k -<A_k, o_k> + eps <A_k, log A_k> + <A_k, div_w eta_k>. The iteration
(eq. 28 with the eps scaling of eq. 35), started from eta^0 = 0, A^0 = softmax(o / eps), is

    eta^t = clip(eta^{t-1} - tau grad_w A^{t-1}, -lam, lam)
    A^t   = softmax((o - div_w eta^t) / eps).

The A step is an exact minimisation of L(., eta^t) (not a proximal step), so the scheme is
projected gradient ascent on the dual function

    E_D(eta) = min_A L(A, eta) = L(A(eta), eta) = -eps sum_i logsumexp((o_i - div_w eta_i) / eps)
                                                                           (eq. 30),

whose gradient is -grad_w A(eta) (Danskin). That gradient is L-Lipschitz with
L = ||grad_w||^2 / (2 eps) (the softmax Jacobian has norm <= 1 / (2 eps)), so E_D increases
monotonically and the iteration converges for tau < 2 / L = 4 eps / ||grad_w||^2; this is the
step-size condition of this scheme (the PDHG condition tau sigma ||grad_w||^2 <= 1 does not
apply: there is no primal step size). At iteration t both energies are evaluated at the pair
(A^t, eta^t) of the iteration, A^t = A(eta^t), and

    E_P(A^t) - E_D(eta^t) = lam ||grad_w A^t||_1 + <grad_w A^t, eta^t> >= 0,

which is how the gap is computed (no cancellation). The solver stops after ``iters``
iterations or when the relative gap |E_P - E_D| / |E_P| <= tol (eq. 31), for every image.

Cost per iteration: one graph gradient and one divergence, O(B K N k) time and memory; the
back-propagation through every iteration (``grad='bptt'``) keeps O(iters B K N k) for
backward, ``grad='one_step'`` keeps one iteration's worth (the gradient vocabulary of
:mod:`nlseg.ops.gradient_modes`, shared with the hams of Hamburger; the former names
``'unrolled'`` and ``'last_step'`` still work with a DeprecationWarning).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch

from .gradient_modes import resolve_grad_mode
from .graph_operators import _flat_index, graph_divergence, graph_gradient, \
    graph_norm_bound

__all__ = ['nltv_softmax', 'nltv_step', 'nltv_energies']

# fraction of the step-size limit 4 eps / ||grad_w||^2 used by tau='auto' (with the bound of
# graph_norm_bound, which over-estimates ||grad_w||^2, so the step stays strictly inside)
AUTO_TAU_FRACTION = 0.95


def check_solver_args(lam: float, tau: Union[float, str], eps: float) -> None:
    """ValueError naming the argument unless lam >= 0, tau > 0 or 'auto', eps > 0."""
    if not float(lam) >= 0:
        raise ValueError(f'lam must be >= 0, got {lam}')
    if isinstance(tau, str):
        if tau != 'auto':
            raise ValueError(f"tau must be a float > 0 or 'auto', got {tau!r}")
    elif not float(tau) > 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    if not float(eps) > 0:
        raise ValueError(f'eps must be > 0, got {eps}')


def _primal_z(o: torch.Tensor, eta: Optional[torch.Tensor], index: torch.Tensor,
              weight: torch.Tensor, eps: float) -> torch.Tensor:
    """z = (o - div_w eta) / eps, the argument of the softmax of the A step."""
    if eta is None:
        return o / eps
    return (o - graph_divergence(eta, index, weight)) / eps


def _step_z(o: torch.Tensor, index: torch.Tensor, weight: torch.Tensor, eta: torch.Tensor,
            lam: float, tau: Union[float, torch.Tensor],
            eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    a_prev = torch.softmax(_primal_z(o, eta, index, weight, eps), dim=1)
    eta = torch.clamp(eta - tau * graph_gradient(a_prev, index, weight), -lam, lam)
    return _primal_z(o, eta, index, weight, eps), eta


def nltv_step(logits: torch.Tensor, index: torch.Tensor, weight: torch.Tensor,
              eta: torch.Tensor, lam: float = 3.0, tau: Union[float, torch.Tensor] = 0.03,
              eps: float = 0.5) -> Tuple[torch.Tensor, torch.Tensor]:
    """One full iteration from ``eta^{t-1}`` (B, K, N, k): returns (A^t, eta^t).

    A^{t-1} = softmax((o - div_w eta^{t-1}) / eps) is recomputed from ``eta``, so the result is
    a differentiable function of (logits, weight, eta). ``logits`` is (B, K, N).
    """
    z, eta = _step_z(logits, index, weight, eta, lam, tau, eps)
    return torch.softmax(z, dim=1), eta


def nltv_energies(logits: torch.Tensor, index: torch.Tensor, weight: torch.Tensor,
                  eta: torch.Tensor, lam: float = 3.0,
                  eps: float = 0.5) -> Dict[str, torch.Tensor]:
    """Energies at the pair (A(eta), eta), per image (shape (B,)), logits (B, K, N).

    ``primal`` is eq. 29 (with eps), ``dual`` eq. 30 (log-sum-exp form), ``gap`` their
    difference, ``rel_gap`` |E_P - E_D| / |E_P| (eq. 31).
    """
    z = _primal_z(logits, eta, index, weight, eps)
    return _energies_from(logits, z, graph_gradient(torch.softmax(z, 1), index, weight),
                          eta, lam, eps)


def _energies_from(o: torch.Tensor, z: torch.Tensor, grad_a: torch.Tensor,
                   eta: Optional[torch.Tensor], lam: float,
                   eps: float) -> Dict[str, torch.Tensor]:
    inner = None if eta is None else (grad_a * eta).flatten(1).sum(1)
    return _energies(o, z, grad_a.abs().flatten(1).sum(1), inner, lam, eps)


def _energies(o: torch.Tensor, z: torch.Tensor, tv: torch.Tensor,
              inner: Optional[torch.Tensor], lam: float,
              eps: float) -> Dict[str, torch.Tensor]:
    """The energies at (A(eta), eta) from z, tv = ||grad_w A||_1 and inner = <grad_w A, eta>
    (None: eta = 0), per image."""
    log_a = torch.log_softmax(z, dim=1)
    a = log_a.exp()
    fidelity = (a * (eps * log_a - o)).flatten(1).sum(1)
    primal = fidelity + lam * tv
    dual = -eps * torch.logsumexp(z, dim=1).flatten(1).sum(1)
    gap = lam * tv
    if inner is not None:
        gap = gap + inner
    rel_gap = gap.abs() / primal.abs().clamp_min(torch.finfo(primal.dtype).tiny)
    return dict(primal=primal, dual=dual, gap=gap, rel_gap=rel_gap)


def _iterate(o: torch.Tensor, index: torch.Tensor, weight: torch.Tensor, lam: float,
             tau: float, eps: float, iters: int, tol: Optional[float], check_every: int,
             history: Optional[Dict[str, list]]
             ) -> Tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """Run up to ``iters`` iterations; returns (z^T, eta^T, T). eta None means eta = 0."""
    eta = None
    z = o / eps
    monitor = history is not None or tol is not None
    grad_a = None
    t = 0
    while True:
        need_grad_a = t < iters or monitor
        if need_grad_a:
            grad_a = graph_gradient(torch.softmax(z, dim=1), index, weight)
        if monitor and (history is not None or t % check_every == 0 or t == iters):
            e = _energies_from(o, z, grad_a, eta, lam, eps)
            if history is not None:
                for key, val in e.items():
                    history[key].append(val.detach())
            if tol is not None and (t % check_every == 0 or t == iters) and \
                    bool((e['rel_gap'] <= tol).all()):
                break
        if t >= iters:
            break
        step = -tau * grad_a if eta is None else eta - tau * grad_a
        eta = torch.clamp(step, -lam, lam)
        z = _primal_z(o, eta, index, weight, eps)
        t += 1
    return z, eta, t


def _iterate_scaled(o: torch.Tensor, index: torch.Tensor, weight: torch.Tensor, lam: float,
                    tau: Union[float, torch.Tensor], eps: float, iters: int,
                    tol: Optional[float], check_every: int,
                    history: Optional[Dict[str, list]]
                    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """:func:`_iterate` without autograd, in the scaled dual xi = w eta (the fast path).

    With d = A_j - A_i (so grad_w A = w d) and w >= 0 the iteration is, exactly in real
    arithmetic, xi <- clamp(xi - tau w^2 d, -lam w, lam w) and div_w eta = sum_out xi -
    scatter_in xi: two of the reference's four products over the (B, K, N, k) edges go (the
    weight's product in the gradient and in the divergence), and the energies are only formed
    at a stopping test (lam ||grad_w A||_1 = lam sum w |d|, <grad_w A, eta> = <d, xi>).
    Tested equal to :func:`_iterate` to rounding. Returns (z^T, eta^T, T) with eta = xi / w
    (0 where w = 0, where the reference's eta stays 0).
    """
    b, c, n = o.shape
    k = index.shape[2]
    flat = _flat_index(index, c)
    w = weight.unsqueeze(1)  # (B, 1, N, k)
    tw2 = tau * w.square()  # tau: a float, or (B, 1, 1, 1) for tau='auto'
    bound = lam * w
    xi = None
    z = o / eps
    monitor = history is not None or tol is not None
    t = 0
    while True:
        a = torch.softmax(z, dim=1)
        d = torch.gather(a, 2, flat).view(b, c, n, k).sub_(a.unsqueeze(-1))
        if monitor and (history is not None or t % check_every == 0 or t == iters):
            e = _energies_scaled(o, z, d, w, xi, lam, eps)
            if history is not None:
                for key, val in e.items():
                    history[key].append(val)
            if tol is not None and (t % check_every == 0 or t == iters) and \
                    bool((e['rel_gap'] <= tol).all()):
                break
        if t >= iters:
            break
        step = d.mul_(tw2)
        xi = step.neg_() if xi is None else xi.sub_(step)
        xi = torch.clamp(xi, min=-bound, max=bound)
        incoming = torch.zeros(b, c, n, dtype=xi.dtype, device=xi.device)
        incoming.scatter_add_(2, flat, xi.view(b, c, n * k))
        z = (o - (xi.sum(-1) - incoming)) / eps
        t += 1
    eta = None if xi is None else torch.where(w > 0, xi / w.clamp_min(
        torch.finfo(w.dtype).tiny), 0).clamp_(-lam, lam)
    return z, eta, t


def _energies_scaled(o: torch.Tensor, z: torch.Tensor, d: torch.Tensor, w: torch.Tensor,
                     xi: Optional[torch.Tensor], lam: float,
                     eps: float) -> Dict[str, torch.Tensor]:
    """:func:`_energies_from` from d = A_j - A_i, the weights w and xi = w eta."""
    inner = None if xi is None else (d * xi).flatten(1).sum(1)
    return _energies(o, z, (d.abs() * w).flatten(1).sum(1), inner, lam, eps)


def nltv_softmax(logits: torch.Tensor,
                 index: torch.Tensor,
                 weight: torch.Tensor,
                 lam: float = 3.0,
                 tau: Union[float, str] = 0.03,
                 eps: float = 0.5,
                 iters: int = 1500,
                 tol: Optional[float] = 1e-5,
                 return_history: bool = False,
                 grad: str = 'bptt',
                 log: bool = False,
                 check_every: int = 1) -> Union[torch.Tensor, Tuple[torch.Tensor, dict]]:
    """NLTV-regularised softmax of ``logits`` (B, K, H, W) on the graph (index, weight).

    Args:
        logits: (B, K, H, W) class scores ``o``.
        index, weight: the graph, (B, N, k) with N = H * W (see :func:`knn_graph`).
        lam: regularisation weight lambda >= 0 (lam = 0 gives softmax(o / eps) exactly).
        tau: dual step size > 0 (converges for tau < 4 eps / ||grad_w||^2), or 'auto':
            0.95 * 4 eps / graph_norm_bound(index, weight), per image.
        eps: entropy weight / temperature > 0 (eq. 34-35).
        iters: maximum number of iterations (the paper uses 1500 at test time).
        tol: stop when the relative duality gap of every image is <= tol (None: never).
        return_history: also return a dict with per-iteration ``primal``, ``dual``, ``gap``,
            ``rel_gap`` tensors of shape (T + 1, B) (index 0 is the initial point) and
            ``iters`` (T, the iterations run).
        grad: 'bptt' (autograd through every iteration) or 'one_step' (iterations
            1..T-1 without autograd, gradient through the last one only: eta^{T-1} is treated
            as a constant; O(1) iterations of memory). The deprecated 'unrolled' and
            'last_step' mean 'bptt' and 'one_step' (DeprecationWarning).
        log: return log-probabilities log_softmax((o - div_w eta) / eps) instead of
            probabilities (exact, no log of a rounded probability).
        check_every: evaluate the stopping test every this many iterations.

    Returns:
        (B, K, H, W) probabilities (or log-probabilities), float32 for half/bfloat16 input,
        and the history dict when ``return_history``.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 4:
        raise ValueError(f'logits must be a (B, K, H, W) tensor, got '
                         f'{getattr(logits, "shape", type(logits))}')
    check_solver_args(lam, tau, eps)
    grad = resolve_grad_mode(grad, 'nltv_softmax')
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f'iters must be an int >= 0, got {iters!r}')
    if tol is not None and not float(tol) >= 0:
        raise ValueError(f'tol must be >= 0 or None, got {tol}')
    if tol is not None and torch.onnx.is_in_onnx_export():
        raise ValueError(f'tol={tol}: the stop on the duality gap is data-dependent control '
                         f'flow, which an exported ONNX graph cannot hold; export with tol=None '
                         f'(a fixed number of iterations, e.g. NLTVSoftmax(tol=None, '
                         f'test_iters=50))')
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f'check_every must be an int >= 1, got {check_every!r}')
    b, c, h, w = logits.shape
    n = h * w
    if index.dim() != 3 or tuple(index.shape[:2]) != (b, n) or weight.shape != index.shape:
        raise ValueError(f'index and weight must have shape (B, H * W, k) = ({b}, {n}, k) '
                         f'for logits of shape {tuple(logits.shape)}, got index '
                         f'{tuple(index.shape)} and weight {tuple(weight.shape)}')

    dtype = torch.promote_types(logits.dtype, torch.float32)
    lam, eps = float(lam), float(eps)
    if tau == 'auto':
        bound = graph_norm_bound(index, weight.to(dtype)).clamp_min(1e-12)
        tau = (AUTO_TAU_FRACTION * 4.0 * eps / bound).view(b, 1, 1, 1)
    else:
        tau = float(tau)
    history = {key: [] for key in ('primal', 'dual', 'gap', 'rel_gap')} if return_history \
        else None
    with torch.autocast(device_type=logits.device.type, enabled=False):
        o = logits.to(dtype).reshape(b, c, n)
        wt = weight.to(dtype)
        needs_grad = torch.is_grad_enabled() and (o.requires_grad or wt.requires_grad)
        if grad == 'one_step' and needs_grad and iters > 0:
            with torch.no_grad():
                _, eta, t = _iterate_scaled(o.detach(), index, wt.detach(), lam, tau, eps,
                                            iters - 1, tol, check_every, history)
            if eta is None:
                eta = torch.zeros(b, c, n, index.shape[2], dtype=dtype, device=o.device)
            z, eta = _step_z(o, index, wt, eta, lam, tau, eps)
            t += 1
            if history is not None:
                e = nltv_energies(o.detach(), index, wt.detach(), eta.detach(), lam, eps)
                for key, val in e.items():
                    history[key].append(val)
        else:
            iterate = _iterate if needs_grad else _iterate_scaled
            z, eta, t = iterate(o, index, wt, lam, tau, eps, iters, tol, check_every,
                                history)
        out = torch.log_softmax(z, dim=1) if log else torch.softmax(z, dim=1)
        out = out.view(b, c, h, w)
    if history is None:
        return out
    hist = {key: torch.stack(val) for key, val in history.items()}
    hist['iters'] = t
    return out, hist
