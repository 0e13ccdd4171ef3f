"""Matrix decompositions used as the "ham" of Hamburger (Geng et al., ICLR 2021).

Pure tensor functions, batched over a leading dimension, in the memory layout of mmseg's
``ham_head.py`` and the authors' Enjoy-Hamburger code:

* ``x``:     (B, d, n)  the data matrix X (d features, n = H*W positions),
* ``bases``: (B, d, r)  the dictionary D (r atoms),
* ``coef``:  (B, n, r)  the codes, stored transposed (C^T), so that X ~ D C = ``bases @ coef^T``.

Each ``*_decompose`` function runs K iterations of one algorithm of the paper and returns the
final ``(bases, coef)`` after one extra code update (the authors' ``compute_coef``):

* :func:`nmf_decompose`: Alg. 2 (NMF with multiplicative updates),
* :func:`vq_decompose`:  Alg. 1 (soft VQ: soft k-means with cosine similarity),
* :func:`cd_decompose`:  Alg. 3 (soft CD: spherical soft k-means, then a ridge solve).

``grad`` selects how gradients flow (paper sec. 2.3; the vocabulary of
:mod:`nlseg.ops.gradient_modes`, shared with the NLTV solver):

* ``'one_step'``: the K iterations run under ``torch.no_grad()``; only the final code update
  is differentiable, w.r.t. ``x`` (bases and codes enter it as constants). Memory and
  backward time do not depend on K. Initial bases that require grad (a learned
  initialisation) get no gradient.
* ``'bptt'``: autograd through every iteration (what mmseg's ``LightHamHead`` does), and so
  into the initial bases when they require grad (the "learned" initialisation of Table 8).

No autocast handling here: callers pass float32/float64 tensors (see
``nlseg.models.blocks.hams``, which disables autocast around these functions).
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor

from .gradient_modes import GRAD_MODES
from .spd_solve import spd_solve

# Star-exported names (the generic helpers GRAD_MODES, cosine_similarity, softmax_codes and
# reconstruct are imported from this module explicitly).
__all__ = [
    'nmf_update_coef', 'nmf_update_bases', 'nmf_decompose',
    'soft_kmeans_bases', 'vq_decompose',
    'ridge_coef', 'cd_decompose',
]

def _check_grad(grad: str) -> None:
    if grad not in GRAD_MODES:
        raise ValueError(f'grad must be one of {GRAD_MODES}, got {grad!r}')


def _iteration_context(grad: str):
    """Context of the K iterations: no autograd for the one-step gradient (sec. 2.3)."""
    _check_grad(grad)
    return torch.no_grad() if grad == 'one_step' else contextlib.nullcontext()


def reconstruct(bases: Tensor, coef: Tensor) -> Tensor:
    """Low-rank reconstruction X_bar = D C: (B, d, r) @ (B, n, r)^T -> (B, d, n)."""
    return torch.bmm(bases, coef.transpose(1, 2))


def cosine_similarity(x: Tensor, bases: Tensor, eps: float = 1e-6) -> Tensor:
    """cosine(D, X)^T of Alg. 1: entry (j, i) = d_i . x_j / (|d_i| |x_j|), shape (B, n, r)."""
    std_x = F.normalize(x, dim=1, eps=eps)
    std_bases = F.normalize(bases, dim=1, eps=eps)
    return torch.bmm(std_x.transpose(1, 2), std_bases)


def softmax_codes(x: Tensor, bases: Tensor, inv_t: float, eps: float = 1e-6) -> Tensor:
    """C = softmax(cosine(D, X) / T) with T = 1 / inv_t, softmax over the r atoms (Alg. 1, 3)."""
    return F.softmax(inv_t * cosine_similarity(x, bases, eps), dim=-1)


# --------------------------------------------------------------------------------------
# NMF (Alg. 2)
# --------------------------------------------------------------------------------------
def nmf_update_coef(x: Tensor, bases: Tensor, coef: Tensor, eps: float = 1e-6) -> Tensor:
    """Multiplicative update of the codes (Alg. 2, line 3; Lee & Seung 2001):
    C <- C * (D^T X) / (D^T D C + eps), written transposed as in mmseg's ``NMF2D``."""
    numerator = torch.bmm(x.transpose(1, 2), bases)                      # (B, n, r)
    denominator = coef.bmm(bases.transpose(1, 2).bmm(bases))            # (B, n, r)
    return coef * numerator / (denominator + eps)


def nmf_update_bases(x: Tensor, bases: Tensor, coef: Tensor, eps: float = 1e-6) -> Tensor:
    """Multiplicative update of the dictionary (Alg. 2, line 4):
    D <- D * (X C^T) / (D C C^T + eps)."""
    numerator = torch.bmm(x, coef)                                      # (B, d, r)
    denominator = bases.bmm(coef.transpose(1, 2).bmm(coef))            # (B, d, r)
    return bases * numerator / (denominator + eps)


def nmf_decompose(x: Tensor, bases: Tensor, steps: int, grad: str = 'one_step',
                  inv_t: float = 1.0, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """NMF by multiplicative updates (Alg. 2), initialised as mmseg's ``NMF2D``.

    The codes start at ``softmax(inv_t * X^T D)`` (appendix F: one spherical k-means step,
    T = 1 recommended for NMF), then ``steps`` iterations update C then D, then one final
    code update (the differentiable one under ``grad='one_step'``). ``x`` must be
    non-negative (Hamburger puts a ReLU before the ham) and ``bases`` positive.
    """
    with _iteration_context(grad):
        coef = F.softmax(inv_t * torch.bmm(x.transpose(1, 2), bases), dim=-1)
        for _ in range(steps):
            coef = nmf_update_coef(x, bases, coef, eps)
            bases = nmf_update_bases(x, bases, coef, eps)
    coef = nmf_update_coef(x, bases, coef, eps)
    return bases, coef


# --------------------------------------------------------------------------------------
# VQ (Alg. 1) and the spherical k-means dictionary of CD (Alg. 3)
# --------------------------------------------------------------------------------------
def soft_kmeans_bases(x: Tensor, coef: Tensor, normalize: bool = False,
                      eps: float = 1e-6) -> Tensor:
    """Dictionary update of soft k-means: D <- X C^T diag(C 1_n)^-1 (Alg. 1, line 4);
    with ``normalize=True`` each atom is then L2-normalised (spherical k-means, Alg. 3)."""
    coef = coef / (eps + coef.sum(dim=1, keepdim=True))                 # diag(C 1_n)^-1
    bases = torch.bmm(x, coef)                                          # (B, d, r)
    return F.normalize(bases, dim=1, eps=eps) if normalize else bases


def vq_decompose(x: Tensor, bases: Tensor, steps: int, grad: str = 'one_step',
                 inv_t: float = 100.0, eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Soft vector quantisation (Alg. 1): ``steps`` iterations of
    C <- softmax(cosine(D, X) / T); D <- X C^T diag(C 1_n)^-1, then a final code update
    C = softmax(cosine(D, X) / T) so that the output D C is a convex combination of atoms."""
    with _iteration_context(grad):
        for _ in range(steps):
            coef = softmax_codes(x, bases, inv_t, eps)
            bases = soft_kmeans_bases(x, coef, normalize=False, eps=eps)
    coef = softmax_codes(x, bases, inv_t, eps)
    return bases, coef


# --------------------------------------------------------------------------------------
# CD (Alg. 3, appendix B)
# --------------------------------------------------------------------------------------
def ridge_coef(x: Tensor, bases: Tensor, beta: float) -> Tensor:
    """Codes of concept decomposition (appendix B, eq. 14): C = (D^T D + beta I)^-1 D^T X.

    Solved with ``torch.linalg.solve`` (an LU solve of the r x r system, never an explicit
    inverse) in at least float32; under ``torch.onnx.export`` (ONNX has no linear solve) by
    the elimination of :func:`nlseg.ops.spd_solve.spd_solve`, exact for this SPD system.
    Returns C^T of shape (B, n, r) in ``x``'s dtype.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    xs, ds = x.to(dtype), bases.to(dtype)
    r = ds.shape[-1]
    gram = torch.bmm(ds.transpose(1, 2), ds)                            # (B, r, r)
    gram = gram + beta * torch.eye(r, dtype=dtype, device=ds.device)
    rhs = torch.bmm(ds.transpose(1, 2), xs)                             # (B, r, n)
    if torch.onnx.is_in_onnx_export():  # ONNX has no linear solve: the same system by
        coef = spd_solve(gram, rhs)       # elimination (gram is SPD), see nlseg.ops.spd_solve
    else:
        coef = torch.linalg.solve(gram, rhs)                            # (B, r, n)
    return coef.transpose(1, 2).to(x.dtype)


def cd_decompose(x: Tensor, bases: Tensor, steps: int, grad: str = 'one_step',
                 inv_t: float = 100.0, beta: float = 0.1,
                 eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    """Soft concept decomposition (Alg. 3): ``steps`` iterations of spherical soft k-means
    C <- softmax(cosine(D, X) / T); D <- normalize(X C^T) (the column normalisation makes
    diag(C 1_n)^-1 irrelevant), then the ridge solve C = (D^T D + beta I)^-1 D^T X."""
    with _iteration_context(grad):
        for _ in range(steps):
            coef = softmax_codes(x, bases, inv_t, eps)
            bases = soft_kmeans_bases(x, coef, normalize=True, eps=eps)
    coef = ridge_coef(x, bases, beta)
    return bases, coef
