"""The "hams" of Hamburger (Geng et al., ICLR 2021, sec. 2.2.2 and appendix B):
``NMF2D``, ``VQ2D`` and ``CD2D`` map a feature map (B, d*S, H, W) to its low-rank
reconstruction of the same shape.

The input is split into S groups; each group is a matrix X (d x n, n = H*W) that is
factorised as X ~ D C with r atoms by K iterations of the algorithm in
:mod:`nlseg.ops.matrix_decomposition`; the output is D C.

Differences from mmseg 1.2.2's ``decode_heads/ham_head.py`` (whose ``NMF2D`` forward we
reproduce value for value in training mode for the same torch seed):

* ``grad='one_step'`` (default, paper sec. 2.3): the K iterations run without autograd and
  only the final code update is differentiable; mmseg differentiates every step
  (``grad='bptt'`` here).
* Evaluation is deterministic: in eval mode the random bases come from a CPU generator seeded
  with ``eval_seed`` (one draw of shape (S, d, r), shared by every image of the batch), so an
  image gives the same output on every call, in every process and on every device, whatever
  else is in its batch. Training mode draws from torch's global RNG on the input's device.
* Four initialisations of the bases (paper appendix F, Table 8), ``bases_init``:
  ``'random'`` (``rand_init=True``, the default and the paper's best): new random bases at
  every forward; ``'online'`` (``rand_init=False``, mmseg's meaning of it): a buffer registered
  in ``__init__`` (loadable from checkpoints) and warm-started by :meth:`online_update` after
  each training forward; ``'fixed'``: the same buffer, never updated; ``'learned'``: the bases
  are an ``nn.Parameter`` learned by back-propagation through every iteration (the paper:
  "the BPTT algorithm is employed to learn the initialization", so it needs
  ``grad='bptt'``: under the one-step gradient the initial bases get no gradient).
* The decomposition runs in float32 with autocast disabled (float64 inputs stay float64) and
  the result is cast back to the input dtype; no hard-coded ``.cuda()``.
* Arguments that a configuration does not use warn (UserWarning) when set to a non-default
  value: ``eta`` without ``bases_init='online'``, ``eval_seed`` without ``'random'``, and
  ``inv_t`` for NMF (forced to 1, as in mmseg and the authors' code).
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from nlseg.ops.gradient_modes import resolve_grad_mode
from nlseg.ops.matrix_decomposition import cd_decompose, nmf_decompose, reconstruct, \
    vq_decompose
from nlseg.validation import check_bool, check_choice, check_feature_map, check_int, \
    check_real

__all__ = ['NMF2D', 'VQ2D', 'CD2D', 'BASES_INITS']

#: the accepted values of ``bases_init`` (paper appendix F, Table 8).
BASES_INITS = ('random', 'online', 'fixed', 'learned')
_DEFAULT_ETA = 0.9
_DEFAULT_EVAL_SEED = 0


class _MatrixDecomposition2D(nn.Module):
    """Shared reshaping, initialisation and dtype handling of the hams.

    Args:
        channels: channel count of the input (d * S). Required with a stored initialisation
            (``bases_init`` 'online', 'fixed' or 'learned'); when given, inputs are checked
            against it.
        MD_S: number of groups S the channels are split into.
        MD_R: number of atoms r.
        train_steps / eval_steps: iterations K in training / evaluation.
        inv_t: inverse temperature 1/T of the softmax codes (forced to 1 for NMF).
        eta: step of the online update of the bases (``bases_init='online'`` only).
        rand_init: mmseg's switch, kept: ``True`` is ``bases_init='random'``, ``False`` is
            ``bases_init='online'``. Ignored when ``bases_init`` is given (a contradicting
            value raises).
        grad: ``'one_step'`` (paper sec. 2.3) or ``'bptt'`` (autograd through all steps),
            the vocabulary of :mod:`nlseg.ops.gradient_modes`.
        eval_seed: seed of the generator of the eval-mode bases (``'random'`` only).
        eps: guard of the divisions (NMF ratios, normalisations).
        bases_init: ``'random'``, ``'online'``, ``'fixed'`` or ``'learned'`` (module
            docstring); None: from ``rand_init``.
    """

    def __init__(self, channels: Optional[int] = None, MD_S: int = 1, MD_R: int = 64,
                 train_steps: int = 6, eval_steps: int = 7, inv_t: float = 100,
                 eta: float = _DEFAULT_ETA, rand_init: bool = True, grad: str = 'one_step',
                 eval_seed: int = _DEFAULT_EVAL_SEED, eps: float = 1e-6,
                 bases_init: Optional[str] = None) -> None:
        super().__init__()
        self.S = check_int('MD_S', MD_S)
        self.R = check_int('MD_R', MD_R)
        self.train_steps = check_int('train_steps', train_steps)
        self.eval_steps = check_int('eval_steps', eval_steps)
        if channels is not None:
            check_int('channels', channels)
            if channels % self.S:
                raise ValueError(f'channels ({channels}) must be divisible by MD_S ({self.S})')
        grad = resolve_grad_mode(grad, type(self).__name__)
        check_real('inv_t', inv_t, low=0, low_open=True)
        check_real('eta', eta, low=0, high=1)
        check_real('eps', eps, low=0, low_open=True)
        check_bool('rand_init', rand_init)
        self.eval_seed = check_int('eval_seed', eval_seed, min_value=0)
        if bases_init is None:
            bases_init = 'random' if rand_init else 'online'
        else:
            check_choice('bases_init', bases_init, BASES_INITS)
            if not rand_init and bases_init == 'random':
                raise ValueError("rand_init=False contradicts bases_init='random': give "
                                 "only bases_init (one of 'online', 'fixed', 'learned')")
        if bases_init == 'learned' and grad != 'bptt':
            raise ValueError(f"bases_init='learned' needs grad='bptt' (got grad={grad!r}): "
                             f"under the one-step gradient the initial bases get no gradient "
                             f"(paper appendix F learns them by BPTT)")
        if bases_init != 'random' and channels is None:
            raise ValueError(f"bases_init={bases_init!r} (rand_init=False) needs `channels` to "
                             f"build the stored bases")
        owner = type(self).__name__
        if eta != _DEFAULT_ETA and bases_init != 'online':
            warnings.warn(f"{owner}: eta={eta} has no effect with bases_init={bases_init!r} "
                          f"(it is the step of the online update, bases_init='online')",
                          UserWarning, stacklevel=2)
        if eval_seed != _DEFAULT_EVAL_SEED and bases_init != 'random':
            warnings.warn(f"{owner}: eval_seed={eval_seed} has no effect with "
                          f"bases_init={bases_init!r} (it seeds the eval-mode random bases of "
                          f"bases_init='random')", UserWarning, stacklevel=2)
        self.channels = channels
        self.inv_t = inv_t
        self.eta = eta
        self.bases_init = bases_init
        self.grad = grad
        self.eps = eps
        if bases_init != 'random':
            bases = self._draw_bases((self.S, channels // self.S, self.R))
            if bases_init == 'learned':
                self.bases = nn.Parameter(bases)
            else:
                self.register_buffer('bases', bases)
        elif channels is not None:  # drawn now, outside any traced or exported graph
            self._eval_bases(channels // self.S)

    # -- to be defined by each ham -------------------------------------------------------
    def _sample(self, shape: tuple[int, ...], generator: Optional[torch.Generator],
                device: torch.device) -> Tensor:
        """Unnormalised random bases (float32)."""
        raise NotImplementedError

    def _decompose(self, x: Tensor, bases: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------
    @property
    def rand_init(self) -> bool:
        """mmseg's switch, read from ``bases_init``: new random bases at every forward."""
        return self.bases_init == 'random'

    def _constrain(self, bases: Tensor) -> Tensor:
        """Map a learned parameter to valid initial bases (identity; NMF: non-negative)."""
        return bases

    def _draw_bases(self, shape: tuple[int, ...], generator: Optional[torch.Generator] = None,
                    device: torch.device | str = 'cpu') -> Tensor:
        """Random bases of ``shape`` (..., d, r), L2-normalised along d (the atoms)."""
        return F.normalize(self._sample(shape, generator, torch.device(device)), dim=-2)

    def _initial_bases(self, batch: int, d: int, x: Tensor) -> Tensor:
        if not self.rand_init:
            if self.bases.shape[1] != d:
                raise ValueError(f'stored bases have d={self.bases.shape[1]}, input gives {d}')
            bases = self.bases.to(x.dtype)
            if self.bases_init == 'learned':  # atoms kept unit-norm (and >= 0 for NMF)
                bases = F.normalize(self._constrain(bases), dim=1)
            return bases.repeat(batch, 1, 1)
        if self.training:
            # Same call as mmseg's NMF2D._build_bases (global RNG, on the input's device).
            return self._draw_bases((batch * self.S, d, self.R), device=x.device).to(x.dtype)
        return self._eval_bases(d).to(x.device, x.dtype).repeat(batch, 1, 1)

    def _eval_bases(self, d: int) -> Tensor:
        """The eval-mode random bases (S, d, r), float32 on the CPU: one draw from a CPU
        generator seeded with ``eval_seed``, made once per (d, eval_seed) and cached (made in
        ``__init__`` when ``channels`` is known). A graph traced by ``torch.onnx.export`` or
        ``torch.compile`` holds them as a constant, so the exported graph is deterministic
        (a seeded generator draw cannot be exported: it would become a random node)."""
        cache = self.__dict__.setdefault('_eval_bases_cache', {})
        key = (d, self.eval_seed)
        if key not in cache:
            generator = torch.Generator().manual_seed(self.eval_seed)
            cache[key] = self._draw_bases((self.S, d, self.R), generator=generator)
        return cache[key]

    @torch.no_grad()
    def online_update(self, bases: Tensor) -> None:
        """Warm start of ``bases_init='online'`` (``rand_init=False``; appendix F, "online"):
        move the buffer towards
        the batch mean of the solved bases, bases <- normalize(bases + eta (mean - bases)).

        Args:
            bases: solved bases of shape (B * S, d, r) or (B, S, d, r).
        """
        if self.bases_init != 'online':
            raise RuntimeError(f"online_update needs bases_init='online' (rand_init=False), "
                               f"got bases_init={self.bases_init!r}")
        update = bases.detach().reshape(-1, *self.bases.shape).mean(dim=0)
        new = self.bases + self.eta * (update.to(self.bases) - self.bases)
        self.bases.copy_(F.normalize(new, dim=1))

    def factorize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> the factors ``(bases, coef)`` of every group, without forming the
        reconstruction: bases D of shape (B * S, d, r) and codes C^T of shape (B * S, n, r)
        (n = H * W, group-major within each image), so that group g of image b is
        ``bases[b * S + g] @ coef[b * S + g].T``.

        Same work, random draws and side effects (the online update of
        ``bases_init='online'`` in training) as :meth:`forward`; the factors are float32
        (float64 for a float64 input), computed with autocast disabled. A non-4-D,
        non-floating or empty (B = 0, H * W = 0) input, or a channel count other than
        ``channels`` (or not divisible by MD_S), raises before any work.
        """
        check_feature_map(x, type(self).__name__)
        B, C, H, W = x.shape
        if self.channels is not None and C != self.channels:
            raise ValueError(f'{type(self).__name__} expects {self.channels} input channels, '
                             f'got {C}')
        if C % self.S:
            raise ValueError(f'input channels ({C}) must be divisible by MD_S ({self.S})')
        d = C // self.S
        compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        steps = self.train_steps if self.training else self.eval_steps
        with torch.autocast(device_type=x.device.type, enabled=False):
            xs = x.to(compute_dtype).reshape(B * self.S, d, H * W)
            bases = self._initial_bases(B, d, xs)
            bases, coef = self._decompose(xs, bases, steps)
        if self.training and self.bases_init == 'online':
            self.online_update(bases)
        return bases, coef

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W): the low-rank reconstruction D C of each group
        (the product of :meth:`factorize`'s factors, cast back to the input dtype)."""
        bases, coef = self.factorize(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = reconstruct(bases, coef)
        return out.reshape(x.shape).to(x.dtype)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, MD_S={self.S}, MD_R={self.R}, '
                f'train_steps={self.train_steps}, eval_steps={self.eval_steps}, '
                f'inv_t={self.inv_t}, bases_init={self.bases_init!r}, grad={self.grad!r}')


class NMF2D(_MatrixDecomposition2D):
    """Non-negative matrix factorisation by multiplicative updates (paper Alg. 2).

    Bases are ``torch.rand`` normalised along d, codes start at softmax(X^T D) (``inv_t`` is
    forced to 1, as in mmseg and the authors' code). The input must be non-negative
    (``Hamburger`` puts a ReLU in the lower bread). For the same torch seed, training-mode
    outputs equal those of ``mmseg.models.decode_heads.ham_head.NMF2D``.
    """

    def __init__(self, channels: Optional[int] = None, **kwargs) -> None:
        inv_t = kwargs.get('inv_t', 1)
        super().__init__(channels, **kwargs)
        if inv_t != 1:
            warnings.warn(f'NMF2D: inv_t={inv_t} has no effect (NMF initialises its codes '
                          f'with inv_t = 1, as mmseg and the authors do)', UserWarning,
                          stacklevel=2)
        self.inv_t = 1

    def _constrain(self, bases):
        return bases.abs()  # the multiplicative updates need non-negative bases

    def _sample(self, shape, generator, device):
        return torch.rand(shape, generator=generator, device=device, dtype=torch.float32)

    def _decompose(self, x, bases, steps):
        return nmf_decompose(x, bases, steps, self.grad, self.inv_t, self.eps)


class VQ2D(_MatrixDecomposition2D):
    """Soft vector quantisation: soft k-means with cosine similarity, temperature
    1 / ``inv_t`` (paper Alg. 1). Bases are ``torch.randn`` normalised along d."""

    def _sample(self, shape, generator, device):
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)

    def _decompose(self, x, bases, steps):
        return vq_decompose(x, bases, steps, self.grad, self.inv_t, self.eps)


class CD2D(_MatrixDecomposition2D):
    """Soft concept decomposition (paper Alg. 3, appendix B): spherical soft k-means for the
    dictionary, then the ridge codes C = (D^T D + beta I)^-1 D^T X from a linear solve.

    Args:
        beta: ridge weight (paper: 0.1; 0.01 makes no difference).
        **kwargs: as :class:`NMF2D`.
    """

    def __init__(self, channels: Optional[int] = None, beta: float = 0.1, **kwargs) -> None:
        check_real('beta', beta, low=0)
        super().__init__(channels, **kwargs)
        self.beta = beta

    def _sample(self, shape, generator, device):
        return torch.randn(shape, generator=generator, device=device, dtype=torch.float32)

    def _decompose(self, x, bases, steps):
        return cd_decompose(x, bases, steps, self.grad, self.inv_t, self.beta, self.eps)


#: ham_type -> class, the accepted values of ``Hamburger(ham_type=...)``.
HAMS = {'NMF': NMF2D, 'VQ': VQ2D, 'CD': CD2D}
