"""Hamburger: a global context block from matrix decomposition (Geng et al., ICLR 2021).

Y = X + norm(W_u M(W_l X))   (paper eq. 5-6)

lower bread W_l: 1x1 conv C -> d (+ ReLU for NMF, whose input must be non-negative);
ham M: ``NMF2D``/``VQ2D``/``CD2D`` (low-rank reconstruction); upper bread W_u: 1x1 conv
d -> C followed by ``norm_cfg``. ``trailing_relu=True`` adds the final ReLU of the public
implementations (mmseg's ``Hamburger``: ``F.relu(x + enjoy)``; Enjoy-Hamburger's HamburgerV2).

Ablations of the paper's Table 2: ``lower_bread=False`` feeds X itself to the ham (NMF keeps the
ReLU that makes its input non-negative; after HamNet's squeeze conv + BN + ReLU it is the
identity), so ``ham_channels`` must equal ``in_channels``; ``upper_bread=False`` drops W_u and
keeps the norm, Y = X + norm(M(W_l X)), so again ``ham_channels == in_channels``. Both off is
the table's "only ham" row (with ``norm_cfg=None``: no parameters at all). A combination whose
channels cannot add up raises a ValueError at construction.

Low-rank upper bread (``impl='auto'``, the default, or ``'efficient'``): the ham's output is
the rank-r
product D C^T and everything after it is affine up to the residual sum, so the block
computes Y = X + A' C^T + b' from the factors (:mod:`nlseg.ops.low_rank_projection`):

    A = W_u D,   U = A C^T + w_0 (the upper conv's output, never formed),
    BN, training: mean = A mean_n(C) + w_0, var = diag(A Cov_n(C) A^T), pooled over the
        batch (running statistics updated as torch's BatchNorm does); eval: running stats,
    A' = diag(gamma / sqrt(var + eps)) A,   b' = gamma (w_0 - mean) / sqrt(var + eps) + beta.

It is exact in real arithmetic (same outputs, gradients and running statistics as the
materialised path; tested in float64), never forms the (d x n) reconstruction nor the
(C x n) outputs of the conv and the norm, and its product costs n r C multiply-adds instead
of the conv's n d C. It applies when the upper bread is a plain 1x1 ``nn.Conv2d`` followed by
nothing or by a plain ``nn.BatchNorm2d`` (``'BN'``, ``'BN2d'``), with no hooks on the ham or
the upper bread's modules. ``impl`` (the vocabulary of every exact fast path of nlseg):
``'dense'`` materialises the reconstruction and runs the modules one after the other (the
reference); ``'efficient'`` always takes the low-rank path and raises where it cannot (no upper
bread or another conv type at construction; GN, LN, a multi-process SyncBN or hooks at
forward); ``'auto'`` takes it whenever it applies (:attr:`low_rank_active`). That is a fixed
rule: unlike the non-local family's ``'auto'`` (:mod:`nlseg.ops.impl_choice`), it reads no
measured crossover table: no crossover was measured for the Hamburger, and the choice rests
on the multiply-add count above (n r C against the conv's n d C), not on timings. The former
switch ``low_rank_upper`` (True: ``'auto'``, False: ``'dense'``) still works with a
DeprecationWarning.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from torch import Tensor
from torch.autograd.function import once_differentiable

from nlseg.ops.impl_choice import IMPLS
from nlseg.ops.low_rank_projection import group_codes, low_rank_moments, low_rank_residual, \
    project_bases
from nlseg.validation import check_bool, check_choice, check_feature_map, check_int, \
    check_optional_dict
from .hams import HAMS

try:  # what mmengine turns SyncBN into in a single process: batch norm for any input rank
    from mmengine.model.utils import _BatchNormXd
    _PLAIN_BATCH_NORMS: tuple = (nn.BatchNorm2d, _BatchNormXd)
except ImportError:  # pragma: no cover
    _PLAIN_BATCH_NORMS = (nn.BatchNorm2d,)

__all__ = ['Hamburger']


class Hamburger(nn.Module):
    """Hamburger block (paper eq. 6, Fig. 1).

    Args:
        in_channels: channels C of the input and output.
        ham_channels: channels d seen by the ham (the latent dimension; paper: 512).
        ham_type: ``'NMF'`` (default), ``'VQ'`` or ``'CD'``.
        ham_kwargs: arguments of the ham (``MD_S``, ``MD_R``, ``train_steps``, ``eval_steps``,
            ``inv_t``, ``eta``, ``rand_init``, ``bases_init``, ``grad``, ``eval_seed``,
            ``beta`` for CD).
        norm_cfg: norm after the upper bread (paper: BN; ``None``: no norm, conv with bias).
        conv_cfg: conv layer config of both breads.
        trailing_relu: apply ReLU to the sum, as mmseg and the authors' code do.
        low_rank_upper: deprecated alias of ``impl`` (True: ``'auto'``, False: ``'dense'``).
        impl: ``'auto'`` | ``'dense'`` | ``'efficient'``: how the upper bread is applied (module
            docstring). Either way the parameters and buffers (and so the checkpoints) are
            the same.
        lower_bread: keep the lower bread W_l (False: Table 2's "- lower bread").
        upper_bread: keep the upper bread W_u (False: Table 2's "- upper bread").
    """

    def __init__(self, in_channels: int, ham_channels: int = 512, ham_type: str = 'NMF',
                 ham_kwargs: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None, trailing_relu: bool = False,
                 low_rank_upper: Optional[bool] = None, impl: str = 'auto',
                 lower_bread: bool = True, upper_bread: bool = True) -> None:
        super().__init__()
        check_choice('ham_type', ham_type, tuple(HAMS))
        check_int('in_channels', in_channels)
        check_int('ham_channels', ham_channels)
        check_optional_dict('ham_kwargs', ham_kwargs)
        check_optional_dict('norm_cfg', norm_cfg)
        check_optional_dict('conv_cfg', conv_cfg)
        check_bool('trailing_relu', trailing_relu)
        check_choice('impl', impl, IMPLS)
        check_bool('lower_bread', lower_bread)
        check_bool('upper_bread', upper_bread)
        impl = resolve_low_rank_upper(low_rank_upper, impl, type(self).__name__)
        for flag, which, why in ((lower_bread, 'lower', 'the ham reads the input'),
                                 (upper_bread, 'upper', "the ham's output is added to the input")):
            if not flag and ham_channels != in_channels:
                raise ValueError(
                    f'{which}_bread=False needs ham_channels == in_channels (without the '
                    f'{which} bread {why} directly), got ham_channels={ham_channels}, '
                    f'in_channels={in_channels}')
        if conv_cfg is not None and not lower_bread and not upper_bread:
            warnings.warn(f'Hamburger: conv_cfg={conv_cfg!r} has no effect without both breads '
                          f'(lower_bread=False, upper_bread=False: there is no conv)',
                          UserWarning, stacklevel=2)
        if impl == 'efficient' and not upper_bread:
            raise ValueError("impl='efficient' applies the upper bread to the ham's factors: "
                             "it needs upper_bread=True (use impl='auto' or 'dense')")
        self.in_channels = in_channels
        self.ham_channels = ham_channels
        self.ham_type = ham_type
        self.trailing_relu = trailing_relu
        self.impl = impl
        self.with_lower_bread = lower_bread
        self.with_upper_bread = upper_bread
        nmf_relu = dict(type='ReLU') if ham_type == 'NMF' else None
        self.lower_bread = ConvModule(
            in_channels, ham_channels, 1, conv_cfg=conv_cfg, norm_cfg=None,
            act_cfg=nmf_relu) if lower_bread else None
        self.ham = HAMS[ham_type](ham_channels, **dict(ham_kwargs or {}))
        if upper_bread:
            self.upper_bread = ConvModule(
                ham_channels, in_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                act_cfg=None)
        else:
            self.upper_bread = None
            # the norm of eq. 6 on the ham's output (the upper bread's norm when it exists)
            self.norm = build_norm_layer(norm_cfg, in_channels)[1] if norm_cfg else None
        if impl == 'efficient':
            reason = self._low_rank_obstacle(structural=True)
            if reason is not None:
                raise ValueError(f"impl='efficient' cannot apply here: {reason} "
                                 f"(use impl='auto' or 'dense')")

    @property
    def low_rank_upper(self) -> bool:
        """Deprecated: ``impl != 'dense'``; setting it sets ``impl`` ('auto' or 'dense')."""
        return self.impl != 'dense'

    @low_rank_upper.setter
    def low_rank_upper(self, value: bool) -> None:
        check_bool('low_rank_upper', value)
        warnings.warn("Hamburger.low_rank_upper is deprecated, set impl='auto' (True) or "
                      "impl='dense' (False)", DeprecationWarning, stacklevel=2)
        self.impl = 'auto' if value else 'dense'

    def _low_rank_obstacle(self, structural: bool = False) -> Optional[str]:
        """Why the low-rank path cannot run now (None: it can). ``structural`` checks only
        what cannot change after construction (a SyncBN, which mmengine reverts to a plain
        batch norm in a single process, and hooks are then accepted)."""
        upper = self.upper_bread
        if upper is None:
            return 'there is no upper bread (upper_bread=False)'
        conv = upper.conv
        if (type(conv) is not nn.Conv2d or conv.kernel_size != (1, 1) or conv.stride != (1, 1)
                or conv.padding != (0, 0) or conv.dilation != (1, 1) or conv.groups != 1
                or upper.with_activation or upper.with_explicit_padding
                or getattr(upper, 'with_spectral_norm', False)):
            return 'the upper bread is not a plain 1x1 nn.Conv2d'
        skipped = [self.ham, upper, conv]
        if upper.with_norm:
            reverted = structural and isinstance(upper.norm, nn.SyncBatchNorm)
            if type(upper.norm) not in _PLAIN_BATCH_NORMS and not reverted:
                return (f'its norm is {type(upper.norm).__name__}, not a plain batch norm '
                        f'(BN, BN2d, or SyncBN in a single process)')
            if upper.order.index('norm') < upper.order.index('conv'):
                return 'the upper bread applies its norm before its conv'
            skipped.append(upper.norm)
        if not structural and any(m._forward_hooks or m._forward_pre_hooks for m in skipped):
            return 'forward hooks on the ham or the upper bread would be skipped'
        return None

    @property
    def low_rank_active(self) -> bool:
        """Whether :meth:`forward` takes the low-rank path: ``impl`` is not ``'dense'``, the
        upper bread exists and is a plain 1x1 ``nn.Conv2d`` (stride 1, no padding, dilation
        or groups) followed by nothing or by a plain ``nn.BatchNorm2d``, with no activation or
        spectral norm, and neither the ham nor those modules carry forward hooks (which the
        low-rank path would skip). A training-mode BN on a single value per channel
        (B * H * W = 1) still runs the modules, so that BN raises its own error."""
        return self.impl != 'dense' and self._low_rank_obstacle() is None

    def _lower_bread_forward(self, x: Tensor) -> Tensor:
        """W_l X with the lower bread's ReLU (NMF) replaced by an equal in-place ReLU whose
        backward keeps the 1-byte mask (W_l X <= 0) rather than the (d x n) output, when the
        lower bread is conv -> ReLU with no hooks on the module or its ReLU; otherwise the
        lower bread itself."""
        lower = self.lower_bread
        if lower is None:  # no lower bread: the ham reads X (through NMF's ReLU)
            return F.relu(x) if self.ham_type == 'NMF' else x
        # under torch.compile the module itself (no graph break on ctx.mark_dirty; the
        # compiler plans the memory of the ReLU)
        if (not torch.compiler.is_compiling() and lower.with_activation
                and type(lower.activate) is nn.ReLU and not lower.with_norm
                and not lower.with_explicit_padding and lower.order.index('conv') <
                lower.order.index('act') and not any(
                    m._forward_hooks or m._forward_pre_hooks for m in (lower, lower.activate))):
            return _ReLUSavingMask.apply(lower.conv(x))
        return lower(x)

    def forward(self, x: Tensor) -> Tensor:
        """Y = X + norm(W_u M(W_l X)); a non-4-D, non-floating or empty (B = 0) input, or one
        without ``in_channels`` channels, raises before any work."""
        check_feature_map(x, 'Hamburger')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'Hamburger expects a (B, {self.in_channels}, H, W) input '
                             f'({self.in_channels} channels), got shape {tuple(x.shape)} '
                             f'({x.shape[1]} channels)')
        B, _, H, W = x.shape
        if self.upper_bread is None:  # Table 2's "- upper bread": X + norm(M(W_l X))
            out = self.ham(self._lower_bread_forward(x))
            out = x + (self.norm(out) if self.norm is not None else out)
            return F.relu(out, inplace=True) if self.trailing_relu else out
        norm = self.upper_bread.norm if self.upper_bread.with_norm else None
        single_value_bn = norm is not None and norm.training and B * H * W == 1
        if self.impl == 'efficient' and not single_value_bn:
            reason = self._low_rank_obstacle()
            if reason is not None:
                raise RuntimeError(f"Hamburger(impl='efficient'): the low-rank upper bread "
                                   f"cannot run: {reason} (use impl='auto' or 'dense')")
        if self.low_rank_active and not single_value_bn:
            return self._low_rank_forward(x, norm)
        feats = self.lower_bread(x) if self.lower_bread is not None else \
            self._lower_bread_forward(x)
        out = x + self.upper_bread(self.ham(feats))
        return F.relu(out, inplace=True) if self.trailing_relu else out

    def _low_rank_forward(self, x: Tensor, norm: Optional[nn.BatchNorm2d]) -> Tensor:
        """X + BN(W_u D C^T + w_0) (then the trailing ReLU) from the ham's factors (module
        docstring), computed in float32 (float64 for float64 features) with autocast
        disabled, returned in the dtype the materialised path gives (X's dtype promoted with
        the upper bread's output dtype, the autocast dtype under autocast).

        The in-place ReLU acts on the (B, C, n) result of ``baddbmm`` itself, not on a
        reshaped view of it: an in-place op on a view makes autograd keep a copy of the base
        (``CopySlices``), three extra (C x n) tensors in the backward pass."""
        B, C, H, W = x.shape
        feats = self._lower_bread_forward(x)
        feats_dtype = feats.dtype
        bases, coef = self.ham.factorize(feats)
        del feats  # (d x n): not kept beyond the decomposition
        # The materialised path's upper conv (an nn.Conv2d, like the lower one) outputs the
        # features' dtype: the autocast dtype under autocast (float64 stays float64).
        out_dtype = torch.promote_types(x.dtype, feats_dtype)
        conv = self.upper_bread.conv
        with torch.autocast(device_type=x.device.type, enabled=False):
            dtype = bases.dtype
            factors = project_bases(conv.weight.reshape(C, -1).to(dtype), bases, self.ham.S)
            codes = group_codes(coef, self.ham.S)
            shift = (conv.bias.to(dtype) if conv.bias is not None
                     else torch.zeros(C, dtype=dtype, device=x.device))
            if norm is not None:
                factors, shift = _fold_batch_norm(norm, factors, codes, shift)
            out = low_rank_residual(x.reshape(B, C, H * W).to(dtype), factors, codes, shift)
            if self.trailing_relu:
                out = F.relu(out, inplace=True)
        return out.reshape(B, C, H, W).to(out_dtype)


def resolve_low_rank_upper(low_rank_upper: Optional[bool], impl: str, owner: str) -> str:
    """``impl`` after the deprecated ``low_rank_upper`` (True: 'auto', False: 'dense'):
    a DeprecationWarning naming ``impl``, a ValueError when both are given and disagree."""
    if low_rank_upper is None:
        return impl
    check_bool('low_rank_upper', low_rank_upper)
    new = 'auto' if low_rank_upper else 'dense'
    warnings.warn(f"{owner}: low_rank_upper={low_rank_upper} is deprecated, use impl={new!r}",
                  DeprecationWarning, stacklevel=3)
    if impl != 'auto' and (impl == 'dense') != (new == 'dense'):
        raise ValueError(f'low_rank_upper={low_rank_upper} (deprecated) contradicts '
                         f'impl={impl!r}: give only impl')
    return new if impl == 'auto' else impl


class _ReLUSavingMask(torch.autograd.Function):
    """In-place ReLU with the values and gradient of ``F.relu(x, inplace=True)`` (whose
    backward, ``threshold_backward(grad, output, 0)``, zeroes the gradient where the output is
    <= 0, so a NaN passes it) that saves the bool mask x <= 0 (1 byte per element) instead of
    the output (4 bytes in float32)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x <= 0)
        ctx.mark_dirty(x)
        return x.relu_()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        dead, = ctx.saved_tensors
        return grad.masked_fill(dead, 0)


def _fold_batch_norm(norm: nn.BatchNorm2d, factors: Tensor, codes: Tensor,
                     shift: Tensor) -> tuple[Tensor, Tensor]:
    """BN(A K^T + w_0) = A' K^T + b' with A' = diag(s) A, b' = s (w_0 - mean) + beta,
    s = gamma / sqrt(var + eps), mirroring ``torch.nn.modules.batchnorm._BatchNorm.forward``:
    batch statistics (:func:`low_rank_moments`) in training or without running stats, and then
    the running-stat update (momentum, or the cumulative average for ``momentum=None``, the
    unbiased variance N / (N - 1) with N = B * n, ``num_batches_tracked``); running stats
    otherwise."""
    factor = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        factor = (1.0 / float(norm.num_batches_tracked) if norm.momentum is None
                  else norm.momentum)
    batch_stats = norm.training or (norm.running_mean is None and norm.running_var is None)
    dtype = factors.dtype
    if batch_stats:
        mean, var = low_rank_moments(factors, codes)
        mean = mean + shift
        if norm.running_mean is not None and (not norm.training or norm.track_running_stats):
            count = factors.shape[0] * codes.shape[1]
            with torch.no_grad():
                norm.running_mean.mul_(1 - factor).add_(
                    (factor * mean.detach()).to(norm.running_mean.dtype))
                norm.running_var.mul_(1 - factor).add_(
                    (factor * count / (count - 1) * var.detach()).to(norm.running_var.dtype))
    else:
        mean, var = norm.running_mean.to(dtype), norm.running_var.to(dtype)
    scale = torch.rsqrt(var + norm.eps)
    offset = -mean * scale
    if norm.affine:
        scale = norm.weight.to(dtype) * scale
        offset = norm.weight.to(dtype) * offset + norm.bias.to(dtype)
    return factors * scale.unsqueeze(-1), shift * scale + offset
