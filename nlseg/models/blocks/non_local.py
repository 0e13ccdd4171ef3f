"""Non-local block (NL, Wang et al. 2018) and its adaptive-regularisation variant (ARNLB).

NL:    Y = X + conv_out(A g(X)) with, for query i and key j (eq. 1-5 of the NL paper),
       gaussian          A_ij = softmax_j(x_i . x_j)
       embedded_gaussian A_ij = softmax_j(theta_i . phi_j / sqrt(C'))   (scale when use_scale)
       dot_product       A_ij = theta_i . phi_j / M
       concatenation     A_ij = relu(w . [theta_i, phi_j]) / M
       ``sub_sample`` max-pools (2x2) g and phi only (keys and values), M = number of keys.
ARNLB: A_ij = softmax_j(lambda_i * theta_i . phi_j) (/ sqrt(C') when use_scale) with
       lambda = lambda_x(X), a 3x3 conv C -> 1 (Sun et al., ARNLB; REFERENCE.md).

Both keep ``mmcv.cnn.NonLocal2d``'s submodule names and initialisation (``g``, ``theta``,
``phi``, ``conv_out``, ``concat_project``), so a NonLocal2d state_dict loads into
:class:`NonLocalBlock` unchanged and gives the same output.

``impl``: 'dense' materialises A (the reference); 'efficient' never forms an N x M tensor
(fused scaled_dot_product_attention for the softmax kernels, q (k^T g) / M for dot_product,
query chunks for concatenation); 'auto' = 'efficient', which is exact for every mode.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.model.weight_init import constant_init, normal_init

from nlseg.ops.affinity import apply_affinity, dot_product_affinity, dot_product_attention, \
    softmax_affinity
from nlseg.ops.attention import softmax_attention
from nlseg.ops.concat_affinity import concatenation_affinity, concatenation_attention
from nlseg.validation import check_bool, check_choice, check_feature_map, check_int, \
    check_optional_dict

__all__ = ['NonLocalBlock', 'AdaptiveNonLocalBlock']

IMPLS = ('auto', 'dense', 'efficient')
NL_MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
SOFTMAX_MODES = ('gaussian', 'embedded_gaussian')
LAMBDA_ACTS = (None, 'softplus')


def inter_channels_of(in_channels: int, reduction: int) -> int:
    """C' = C // reduction: TypeError/ValueError naming the argument when either is not a
    positive integer, ValueError when C // reduction leaves no channel."""
    check_int('in_channels', in_channels)
    check_int('reduction', reduction)
    if in_channels // reduction < 1:
        raise ValueError(f'reduction={reduction} leaves no inter channels for '
                         f'in_channels={in_channels} (in_channels // reduction == 0)')
    return in_channels // reduction


def check_block_args(conv_cfg: Optional[dict], norm_cfg: Optional[dict], **flags: bool) -> None:
    """TypeError unless conv_cfg/norm_cfg are dicts or None and every flag is a bool."""
    check_optional_dict('conv_cfg', conv_cfg)
    check_optional_dict('norm_cfg', norm_cfg)
    for name, value in flags.items():
        check_bool(name, value)


def check_input(x: torch.Tensor, in_channels: int, owner: str) -> None:
    """Clear error (before any work) for an input that is not a non-empty floating
    (B, in_channels, H, W) tensor: see :func:`~nlseg.validation.check_feature_map`."""
    check_feature_map(x, owner, channels=in_channels)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def to_map(tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W) with the spatial size of ``like``."""
    b, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(b, c, *like.shape[2:])


def project_out(conv_out: ConvModule, tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``conv_out`` (W_z of eq. 6, with its norm) on the aggregated tokens, as a float32
    island under autocast. A g of the unnormalised affinities (dot product, concatenation,
    the NS unit's A g - g) grows like the cube of the input scale and overflows float16 before
    the output norm brings it back; the ops already return it in float32."""
    y = to_map(tokens, like)
    device_type = like.device.type
    if not torch.is_autocast_enabled(device_type):
        return conv_out(y)
    with torch.autocast(device_type=device_type, enabled=False):
        return conv_out(y.to(conv_out.conv.weight.dtype))


def zero_init_output(conv_module: ConvModule) -> None:
    """Zero the output norm (or the conv when there is none): the block starts as identity."""
    if conv_module.norm_cfg is None:
        constant_init(conv_module.conv, 0)
    else:
        constant_init(conv_module.norm, 0)


def default_init_output(conv_module: ConvModule) -> None:
    """ConvModule's own init of the output layer (kaiming conv, norm weight 1 and bias 0):
    the block's context path is open from the start instead of gated shut."""
    conv_module.init_weights()


class KeyPool2d(nn.MaxPool2d):
    """mmcv's 2x2 key/value sub-sampling; maps smaller than 2x2 are left as they are
    (where ``nn.MaxPool2d`` would raise), so 1x1 feature maps work with sub_sample."""

    def __init__(self) -> None:
        super().__init__(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < 2 or x.shape[-1] < 2:
            return x
        return super().forward(x)


class NonLocalBlock(nn.Module):
    """Non-local block, exactly ``mmcv.cnn.NonLocal2d`` with an exact memory-lean path.

    Args:
        in_channels: C. reduction: C' = C // reduction. conv_cfg, norm_cfg: for the 1x1
            convs (norm only on ``conv_out``). impl: 'auto' | 'dense' | 'efficient'.
        use_scale: divide embedded_gaussian logits by sqrt(C').
        mode: 'gaussian' | 'embedded_gaussian' | 'dot_product' | 'concatenation'.
        sub_sample: 2x2 max-pool of g and phi (keys/values only).
        zero_init_output: zero the output norm (or conv) so the block starts as the identity
            (mmcv's default). ``False`` keeps ConvModule's init (norm weight 1): the context
            path is open from the first step. Trained from scratch, the zero gate can stay
            shut: theta, phi and g get no gradient while it is zero (docs/nonlocal.md).
    """

    modes = NL_MODES

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', use_scale: bool = True,
                 mode: str = 'embedded_gaussian', sub_sample: bool = False,
                 zero_init_output: bool = True) -> None:
        super().__init__()
        check_choice('impl', impl, IMPLS)
        check_bool('zero_init_output', zero_init_output)
        self.zero_init_output = zero_init_output
        check_choice('mode', mode, NL_MODES)
        self._check_mode_supported(mode)
        check_block_args(conv_cfg, norm_cfg, use_scale=use_scale, sub_sample=sub_sample)
        self.in_channels = in_channels
        self.reduction = reduction
        self.inter_channels = inter_channels_of(in_channels, reduction)
        self.use_scale = use_scale
        self.mode = mode
        self.impl = impl
        self.sub_sample = sub_sample

        c, ci = in_channels, self.inter_channels
        self.g = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        self.conv_out = ConvModule(ci, c, kernel_size=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                   act_cfg=None)
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
    def efficient(self) -> bool:
        """True when the forward pass never forms the N x M affinity."""
        return self.impl != 'dense'

    def init_weights(self, std: float = 0.01, zeros_init: Optional[bool] = None) -> None:
        """mmcv's init: g/theta/phi normal(std), output norm (or conv) zero, unless
        ``zero_init_output=False`` (then the output layer keeps its default init: norm weight
        1, bias 0). ``zeros_init=False`` draws the output norm (or conv) from normal(std), as
        mmcv's ``NonLocal2d.init_weights(zeros_init=False)``."""
        convs = [self.g] if self.mode == 'gaussian' else [self.g, self.theta, self.phi]
        for m in convs:  # unwrap the sub_sample Sequential(ConvModule, pool)
            normal_init((m[0] if isinstance(m, nn.Sequential) else m).conv, std=std)
        if zeros_init is None:
            zeros_init = self.zero_init_output
            if not zeros_init:
                default_init_output(self.conv_out)
                return
        if zeros_init:
            zero_init_output(self.conv_out)
        elif self.conv_out.norm_cfg is None:
            normal_init(self.conv_out.conv, std=std)
        else:
            normal_init(self.conv_out.norm, std=std)

    @property
    def scale(self) -> float:
        """Logit scale of the softmax kernels: 1/sqrt(C') for scaled embedded_gaussian."""
        if self.mode == 'embedded_gaussian' and self.use_scale:
            return self.inter_channels ** -0.5
        return 1.0

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Query (B, N, D) and key (B, M, D) features: theta/phi, or x itself (gaussian)."""
        if self.mode == 'gaussian':
            key = self.phi(x) if self.sub_sample else x
            return to_tokens(x), to_tokens(key)
        return to_tokens(self.theta(x)), to_tokens(self.phi(x))

    def aggregate(self, query: torch.Tensor, key: torch.Tensor,
                  value: torch.Tensor) -> torch.Tensor:
        """A v, shape (B, N, Cv), by the dense or the efficient path of ``self.mode``."""
        if self.mode in SOFTMAX_MODES:
            if self.efficient:
                return softmax_attention(query, key, value, self.scale)
            return apply_affinity(softmax_affinity(query, key, self.scale), value)
        if self.mode == 'dot_product':
            if self.efficient:
                return dot_product_attention(query, key, value)
            return apply_affinity(dot_product_affinity(query, key), value)
        conv = self.concat_project.conv
        if self.efficient:
            return concatenation_attention(query, key, value, conv.weight, conv.bias)
        return apply_affinity(concatenation_affinity(query, key, conv.weight, conv.bias), value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, type(self).__name__)
        query, key = self.query_key(x)
        y = self.aggregate(query, key, to_tokens(self.g(x)))
        return x + project_out(self.conv_out, y, x)


class AdaptiveNonLocalBlock(NonLocalBlock):
    """ARNLB: non-local block with a per-position adaptive entropy weight.

    A_ij = softmax_j(lambda_i * theta_i . phi_j) (/ sqrt(C') only when ``use_scale``), with
    lambda = ``lambda_x``(X), a 3x3 conv C -> 1; Y = X + conv_out(A g). lambda_i is the
    inverse of the entropy-regularisation weight eps_i of the optimisation whose minimiser is
    the softmax, so it multiplies the query and fused attention applies with query
    lambda_i * theta_i. ``lambda_act=None`` uses the raw lambda (the authors' code);
    'softplus' keeps it positive (eps_i > 0, the paper's reading). The authors' shape bug
    (phi permuted before the matmul) is not reproduced. Only the softmax modes (gaussian,
    embedded_gaussian) exist: the adaptive weight is a softmax temperature.
    """

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', use_scale: bool = False,
                 mode: str = 'embedded_gaussian', lambda_act: Optional[str] = None,
                 zero_init_output: bool = True) -> None:
        check_choice('lambda_act', lambda_act, LAMBDA_ACTS)
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, use_scale=use_scale, mode=mode,
                         zero_init_output=zero_init_output)
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

    def aggregate(self, query: torch.Tensor, key: torch.Tensor,
                  value: torch.Tensor) -> torch.Tensor:
        """As NonLocalBlock's, but a float32 island under float16 autocast: the fused
        attention would cast the query lambda_i * theta_i back to half, where it overflows
        (bfloat16 has float32's range and needs no island)."""
        device_type = query.device.type
        if not (torch.is_autocast_enabled(device_type)
                and torch.get_autocast_dtype(device_type) == torch.float16):
            return super().aggregate(query, key, value)
        with torch.autocast(device_type=device_type, enabled=False):
            dtype = torch.promote_types(query.dtype, torch.float32)
            return super().aggregate(query.to(dtype), key.to(dtype), value.to(dtype))
