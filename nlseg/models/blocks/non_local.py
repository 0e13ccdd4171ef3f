"""Non-local block (NL, Wang et al. 2018) and its adaptive-regularisation variant (ARNLB).

NL:    Y = X + conv_out(A g(X)) with, for query i and key j (eq. 1-5 of the NL paper),
       gaussian          A_ij = softmax_j(x_i . x_j)
       embedded_gaussian A_ij = softmax_j(theta_i . phi_j / sqrt(C'))   (scale when use_scale)
       dot_product       A_ij = theta_i . phi_j / M
       concatenation     A_ij = relu(w . [theta_i, phi_j]) / M
       ``sub_sample`` max-pools (2x2) g and phi only (keys and values), M = number of keys.
ARNLB: A_ij = softmax_j(lambda_i * s_ij) with s_ij the NL logits of the mode (embedded_gaussian
       theta_i . phi_j, / sqrt(C') when use_scale; gaussian x_i . x_j) and lambda = lambda_x(X),
       a 3x3 conv C -> 1 (Sun et al., ARNLB).

Both keep ``mmcv.cnn.NonLocal2d``'s submodule names and initialisation (``g``, ``theta``,
``phi``, ``conv_out``, ``concat_project``), so a NonLocal2d state_dict loads into
:class:`NonLocalBlock` unchanged and gives the same output; NonLocal2d's keywords
(``zeros_init``, ``std``) are accepted and C' = max(C // reduction, 1) as in mmcv.

``impl`` (:class:`~nlseg.models.blocks.non_local_base.NonLocalBase`): 'dense' materialises A
(the reference, :meth:`NonLocalBlock.dense_affinity`); 'efficient' never forms an N x M tensor
(fused scaled_dot_product_attention for the softmax kernels, q (k^T g) / M for dot_product,
query chunks for concatenation); 'auto' picks the faster exact path per forward.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.model.weight_init import normal_init

from nlseg.ops.kernels.common import apply_affinity
from nlseg.ops.kernels.concatenation import concatenation_affinity, concatenation_attention
from nlseg.ops.kernels.dot_product import dot_product_affinity, dot_product_attention
from nlseg.ops.kernels.softmax import softmax_affinity, softmax_attention
from nlseg.validation import check_bool, check_choice, check_real
from .key_pool import KeyPool2d
from .non_local_base import NL_MODES, SOFTMAX_MODES, NonLocalBase, Queries, query_index
from .output_projection import project_out, zero_init_output
from .tokens import to_tokens

__all__ = ['NonLocalBlock', 'AdaptiveNonLocalBlock']

LAMBDA_ACTS = (None, 'softplus')


class NonLocalBlock(NonLocalBase):
    """Non-local block, exactly ``mmcv.cnn.NonLocal2d`` with an exact memory-lean path.

    Args:
        in_channels: C. reduction: C' = max(C // reduction, 1). conv_cfg, norm_cfg: for the
            1x1 convs (norm only on ``conv_out``). impl: 'auto' | 'dense' | 'efficient'.
        use_scale: divide embedded_gaussian logits by sqrt(C') (no effect in other modes,
            as in mmcv).
        mode: 'gaussian' | 'embedded_gaussian' | 'dot_product' | 'concatenation'.
        sub_sample: 2x2 max-pool of g and phi (keys/values only).
        zero_init_output: zero the output norm (or conv) so the block starts as the identity
            (mmcv's default). ``False`` keeps ConvModule's init (norm weight 1): the context
            path is open from the first step. Trained from scratch, the zero gate can stay
            shut: theta, phi and g get no gradient while it is zero (docs/nonlocal.md).
        zeros_init: mmcv ``NonLocal2d``'s keyword, for drop-in use: True is the zero init;
            False draws the output norm (or conv) from normal(std), as mmcv does. None (the
            default): follow ``zero_init_output``. ValueError when it contradicts an explicit
            ``zero_init_output=False``.
        std: std of the normal init of g/theta/phi (mmcv's ``std``, default 0.01).

    Positional arguments follow this signature (``in_channels, reduction, ...``), not
    NonLocal2d's (``in_channels, sub_sample, conv_cfg``): pass NonLocal2d's by keyword.
    """

    #: the pairwise functions (``mode``) the block accepts
    modes = NL_MODES

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', use_scale: bool = True,
                 mode: str = 'embedded_gaussian', sub_sample: bool = False,
                 zero_init_output: bool = True, zeros_init: Optional[bool] = None,
                 std: float = 0.01) -> None:
        check_choice('mode', mode, NL_MODES)
        self._check_mode_supported(mode)
        check_bool('sub_sample', sub_sample)
        if zeros_init is not None:
            check_bool('zeros_init', zeros_init)
            check_bool('zero_init_output', zero_init_output)
            if zeros_init and not zero_init_output:
                raise ValueError('zeros_init=True (mmcv NonLocal2d) contradicts '
                                 'zero_init_output=False: pass one of them')
            zero_init_output = zeros_init
        check_real('std', std, low=0)
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, zero_init_output=zero_init_output,
                         use_scale=use_scale, init_std=std)
        #: mmcv's zeros_init=False (output norm drawn from normal(std)); None: not given
        self.zeros_init = zeros_init
        self.mode = mode
        self.sub_sample = sub_sample

        c, ci = in_channels, self.inter_channels
        self.g = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        self.conv_out = self.build_output_projection()
        if mode != 'gaussian':
            self.theta = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
            self.phi = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        if mode == 'concatenation':
            self.concat_project = ConvModule(ci * 2, 1, kernel_size=1, stride=1, padding=0,
                                             bias=False, act_cfg=dict(type='ReLU'))
        self.init_weights()
        if sub_sample:  # same module tree as NonLocal2d: g.0.conv.weight, phi.0.conv.weight
            self.g = nn.Sequential(self.g, KeyPool2d())
            self.phi = nn.Sequential(self.phi, KeyPool2d()) if mode != 'gaussian' \
                else KeyPool2d()

    def _check_mode_supported(self, mode: str) -> None:
        """Hook for subclasses that support only some modes."""

    @property
    def kernel(self) -> str:
        """The registry key (:data:`nlseg.ops.kernels.KERNELS`) of ``mode``'s kernel."""
        return 'softmax' if self.mode in SOFTMAX_MODES else self.mode

    def init_weights(self, std: Optional[float] = None,
                     zeros_init: Optional[bool] = None) -> None:
        """mmcv's init: g/theta/phi normal(std), output norm (or conv) zero, unless
        ``zero_init_output=False`` (then the output layer keeps its default init: norm weight
        1, bias 0). ``zeros_init=False`` draws the output norm (or conv) from normal(std), as
        mmcv's ``NonLocal2d.init_weights(zeros_init=False)``. Without arguments: the ``std``
        and ``zeros_init`` given at construction."""
        std = self.init_std if std is None else std
        convs = [self.g] if self.mode == 'gaussian' else [self.g, self.theta, self.phi]
        for m in convs:  # unwrap the sub_sample Sequential(ConvModule, pool)
            normal_init((m[0] if isinstance(m, nn.Sequential) else m).conv, std=std)
        if zeros_init is None:
            zeros_init = self.zeros_init
        if zeros_init is None:
            self.init_output(self.conv_out)
        elif zeros_init:
            zero_init_output(self.conv_out)
        elif self.conv_out.norm_cfg is None:
            normal_init(self.conv_out.conv, std=std)
        else:
            normal_init(self.conv_out.norm, std=std)

    def key_grid(self, x: torch.Tensor) -> tuple[int, int]:
        h, w = int(x.shape[2]), int(x.shape[3])
        return KeyPool2d.output_size(h, w) if self.sub_sample else (h, w)

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Query (B, N, D) and key (B, M, D) features: theta/phi, or x itself (gaussian)."""
        if self.mode == 'gaussian':
            key = self.phi(x) if self.sub_sample else x
            return to_tokens(x), to_tokens(key)
        return to_tokens(self.theta(x)), to_tokens(self.phi(x))

    def pairwise(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """Dense A (B, N, M) of ``mode`` from query and key features (the reference)."""
        if self.mode in SOFTMAX_MODES:
            return softmax_affinity(query, key, self.scale)
        if self.mode == 'dot_product':
            return dot_product_affinity(query, key)
        conv = self.concat_project.conv
        return concatenation_affinity(query, key, conv.weight, conv.bias)

    def aggregate(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  impl: str = 'efficient') -> torch.Tensor:
        """A v, shape (B, N, Cv), by the 'dense' or the 'efficient' path of ``self.mode``."""
        if impl == 'dense':
            return apply_affinity(self.pairwise(query, key), value)
        if self.mode in SOFTMAX_MODES:
            return softmax_attention(query, key, value, self.scale)
        if self.mode == 'dot_product':
            return dot_product_attention(query, key, value)
        conv = self.concat_project.conv
        return concatenation_attention(query, key, value, conv.weight, conv.bias)

    def dense_affinity(self, x: torch.Tensor, queries: Queries = None) -> torch.Tensor:
        """A (B, N, M) the block applies to g(x) (M keys on :meth:`key_grid`), from the dense
        path; rows ``queries`` only when given. Y = x + conv_out(A g(x)) is the forward."""
        self.check_input(x)
        query, key = self.query_key(x)
        index = query_index(queries, query.shape[1], x.device)
        if index is not None:
            query = query[:, index]
        return self.pairwise(query, key)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        query, key = self.query_key(x)
        impl = self.impl_for(query.shape[1], key.shape[1], query.shape[-1], x)
        y = self.aggregate(query, key, to_tokens(self.g(x)), impl)
        return x + project_out(self.conv_out, y, x)


class AdaptiveNonLocalBlock(NonLocalBlock):
    """ARNLB: non-local block with a per-position adaptive entropy weight.

    A_ij = softmax_j(lambda_i * s_ij), lambda = ``lambda_x``(X) a 3x3 conv C -> 1, s_ij the
    logits of NonLocal2d's pairwise function of ``mode`` (the authors' ``NewNonLocal2d``
    derives from it): embedded_gaussian theta_i . phi_j, divided by sqrt(C') when
    ``use_scale`` (mmcv's meaning; the authors' head sets use_scale=False); gaussian
    x_i . x_j (x itself, mmcv's gaussian, no scale). Y = X + conv_out(A g). lambda_i is the
    inverse of the entropy-regularisation weight eps_i of the optimisation whose minimiser is
    the softmax, so it multiplies the query and fused attention applies with query
    lambda_i * theta_i. ``lambda_act=None`` uses the raw lambda (the authors' code);
    'softplus' keeps it positive (eps_i > 0, the paper's reading). The authors' shape bug
    (phi permuted before the matmul) is not reproduced. Only the softmax modes (gaussian,
    embedded_gaussian) exist: the adaptive weight is a softmax temperature. No sub_sample
    (the authors' head has none).
    """

    modes = SOFTMAX_MODES

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', use_scale: bool = False,
                 mode: str = 'embedded_gaussian', lambda_act: Optional[str] = None,
                 zero_init_output: bool = True, std: float = 0.01) -> None:
        check_choice('lambda_act', lambda_act, LAMBDA_ACTS)
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, use_scale=use_scale, mode=mode,
                         zero_init_output=zero_init_output, std=std)
        self.lambda_act = lambda_act
        self.lambda_x = build_conv_layer(conv_cfg, in_channels, 1, kernel_size=3, padding=1)

    def _check_mode_supported(self, mode: str) -> None:
        if mode not in SOFTMAX_MODES:
            raise ValueError(f'AdaptiveNonLocalBlock does not support mode={mode!r}: its '
                             'adaptive weight lambda is the inverse temperature of a softmax, '
                             f'so only the softmax modes {SOFTMAX_MODES} are defined')

    def adaptive_weight(self, x: torch.Tensor) -> torch.Tensor:
        """lambda, shape (B, N, 1): lambda_x(x), through softplus when requested."""
        lam = to_tokens(self.lambda_x(x))
        return nn.functional.softplus(lam) if self.lambda_act == 'softplus' else lam

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        query, key = super().query_key(x)
        # lambda_i * theta_i in float32: under float16 autocast both factors are half and
        # their product overflows long before the (float32) softmax would
        lam = self.adaptive_weight(x)
        dtype = torch.promote_types(torch.promote_types(lam.dtype, query.dtype), torch.float32)
        return lam.to(dtype) * query.to(dtype), key

    def aggregate(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  impl: str = 'efficient') -> torch.Tensor:
        """As NonLocalBlock's, but a float32 island under float16 autocast: the fused
        attention would cast the query lambda_i * theta_i back to half, where it overflows
        (bfloat16 has float32's range and needs no island)."""
        device_type = query.device.type
        if not (torch.is_autocast_enabled(device_type)
                and torch.get_autocast_dtype(device_type) == torch.float16):
            return super().aggregate(query, key, value, impl)
        with torch.autocast(device_type=device_type, enabled=False):
            dtype = torch.promote_types(query.dtype, torch.float32)
            return super().aggregate(query.to(dtype), key.to(dtype), value.to(dtype), impl)
