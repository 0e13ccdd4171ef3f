"""Shared base of the non-local family blocks (NL, ARNLB, NS, SNL/gSNL), as mmcv's
``_NonLocalNd`` is for ``NonLocal2d``.

:class:`NonLocalBase` owns (and checks, once) what every block of the family has:

- ``in_channels`` C, ``reduction`` and the inter channels C' = max(C // reduction, 1)
  (mmcv's rule: a reduction larger than C leaves one channel);
- ``conv_cfg`` / ``norm_cfg`` (for the 1x1 convs; the norm only on the output projection);
- ``impl``: 'dense' forms the N x M affinity A (the reference), 'efficient' never does (fused
  attention, associativity or query chunks: exact, tested equal to dense), 'auto' picks the
  faster of the two PER FORWARD from the actual sizes with
  :func:`nlseg.ops.impl_choice.resolve_impl` (a measured crossover table; the memory cap and
  devices without a measured row give 'efficient');
- ``use_scale`` and the logit scale 1/sqrt(C') of embedded_gaussian (mmcv's meaning);
- the output projection W_z (eq. 6 of Wang et al. 2018: a 1x1 ConvModule C' -> C with the
  norm) and its init (``zero_init_output``: zero norm, the block starts as the identity);
- the input check (a non-empty floating (B, C, H, W) map) and ``dense_affinity``: the exact
  A (B, N, M) the block applies, from its dense reference path.

The base registers no parameter or buffer: the state_dicts of the blocks are theirs.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from nlseg.ops.impl_choice import IMPLS, resolve_impl  # IMPLS: the one vocabulary of paths
from nlseg.validation import check_bool, check_choice, check_feature_map, check_int, \
    check_optional_dict, check_real
from .output_projection import default_init_output, zero_init_output

__all__ = ['NonLocalBase', 'IMPLS', 'NL_MODES', 'SOFTMAX_MODES', 'inter_channels_of',
           'query_index']

#: Pairwise functions of the NL block (Wang et al. 2018, eq. 2-5).
NL_MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
#: The row-normalised (softmax) pairwise functions.
SOFTMAX_MODES = ('gaussian', 'embedded_gaussian')

Queries = Union[None, Sequence[int], torch.Tensor]


@torch.compiler.assume_constant_result
def _num_threads() -> int:
    """torch's CPU thread count, a constant for torch.compile (``torch.get_num_threads``
    called while dynamo traces would break the graph)."""
    return torch.get_num_threads()


def inter_channels_of(in_channels: int, reduction: int) -> int:
    """C' = max(C // reduction, 1), mmcv ``_NonLocalNd``'s rule; TypeError/ValueError naming
    the argument when ``in_channels`` or ``reduction`` is not a positive integer."""
    check_int('in_channels', in_channels)
    check_int('reduction', reduction)
    return max(in_channels // reduction, 1)


def query_index(queries: Queries, n_query: int, device: torch.device) -> Optional[torch.Tensor]:
    """``queries`` (flat query positions, a sequence of ints or a 1-D integer tensor) as a
    long tensor on ``device``; None stays None (all queries). ValueError for an index outside
    [-N, N) or a tensor that is not 1-D integer."""
    if queries is None:
        return None
    index = torch.as_tensor(queries, device=device)
    if index.dim() != 1 or index.dtype.is_floating_point or index.dtype == torch.bool:
        raise ValueError('queries must be a 1-D sequence of integer (flat) query positions, got '
                         f'{tuple(index.shape)} {index.dtype}')
    index = index.long()
    if index.numel() and (index.min() < -n_query or index.max() >= n_query):
        raise ValueError(f'queries must be flat positions in [{-n_query}, {n_query}) of the '
                         f'{n_query} query positions, got {index.tolist()}')
    return index


class NonLocalBase(nn.Module):
    """Base of the non-local family blocks (see the module docstring).

    Args:
        in_channels: C. reduction: C' = max(C // reduction, 1).
        conv_cfg, norm_cfg: of the 1x1 convs (norm only on the output projection).
        impl: 'auto' | 'dense' | 'efficient'.
        zero_init_output: zero the output norm (or conv without norm): identity at init.
        use_scale: divide embedded_gaussian logits by sqrt(C') (blocks without a softmax
            kernel, SNL, leave it False: :attr:`scale` is then 1).
        init_std: std of the normal init of the embeddings g/theta/phi (mmcv's 0.01, made
            for blocks inserted into pretrained networks; trained from scratch, a larger
            value lets a learned affinity leave uniform sooner, docs/nonlocal.md).

    Subclasses set :attr:`kernel` (a key of the kernel registry
    :data:`nlseg.ops.kernels.KERNELS`, checked by :func:`~nlseg.ops.impl_choice.resolve_impl`
    at every forward) and implement :meth:`dense_affinity`.
    """

    #: Registry key (:data:`nlseg.ops.kernels.KERNELS`) whose crossover decides ``impl='auto'``.
    kernel: str = 'softmax'

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto',
                 zero_init_output: bool = True, use_scale: bool = False,
                 init_std: float = 0.01) -> None:
        super().__init__()
        self.inter_channels = inter_channels_of(in_channels, reduction)
        check_choice('impl', impl, IMPLS)
        check_optional_dict('conv_cfg', conv_cfg)
        check_optional_dict('norm_cfg', norm_cfg)
        check_bool('zero_init_output', zero_init_output)
        check_bool('use_scale', use_scale)
        #: std of the normal init of g/theta/phi (``init_weights`` without arguments)
        self.init_std = check_real('init_std', init_std, low=0)
        self.in_channels = in_channels
        self.reduction = reduction
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.impl = impl
        self.zero_init_output = zero_init_output
        self.use_scale = use_scale

    # ------------------------------------------------------------------ output projection
    def build_output_projection(self) -> ConvModule:
        """W_z: 1x1 ConvModule C' -> C with the block's norm, no activation (mmcv's
        ``conv_out``)."""
        return ConvModule(self.inter_channels, self.in_channels, kernel_size=1,
                          conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=None)

    def init_output(self, conv_module: ConvModule) -> None:
        """Zero the output norm (or conv) when ``zero_init_output`` (identity at init), else
        ConvModule's default init (norm weight 1, bias 0)."""
        if self.zero_init_output:
            zero_init_output(conv_module)
        else:
            default_init_output(conv_module)

    # ------------------------------------------------------------------ kernels and paths
    @property
    def scale(self) -> float:
        """Logit scale of the softmax kernels: 1/sqrt(C') for embedded_gaussian with
        ``use_scale`` (mmcv's ``embedded_gaussian``), else 1."""
        if self.use_scale and getattr(self, 'mode', None) == 'embedded_gaussian':
            return self.inter_channels ** -0.5
        return 1.0

    def impl_for(self, n_query: int, n_key: int, channels: int, like: torch.Tensor) -> str:
        """'dense' or 'efficient': ``impl`` itself, or for 'auto' the faster exact path of
        :attr:`kernel` for an ``n_query`` x ``n_key`` affinity of ``channels`` query/key
        channels on ``like``'s device (training pass when autograd will record the forward)."""
        requires_grad = torch.is_grad_enabled() and (
            like.requires_grad or any(p.requires_grad for p in self.parameters()))
        element_size = 8 if like.dtype == torch.float64 else 4
        return resolve_impl(self.impl, self.kernel, n_query, n_key, channels, like.device.type,
                            requires_grad, element_size=element_size,
                            num_threads=_num_threads())

    # ------------------------------------------------------------------ input and affinity
    def check_input(self, x: torch.Tensor) -> None:
        """Clear error (before any work) unless ``x`` is a non-empty floating
        (B, in_channels, H, W) tensor: :func:`~nlseg.validation.check_feature_map`."""
        check_feature_map(x, type(self).__name__, channels=self.in_channels)

    def key_grid(self, x: torch.Tensor) -> tuple[int, int]:
        """(h, w) of the key positions of the affinity for input ``x`` (M = h * w)."""
        return int(x.shape[2]), int(x.shape[3])

    def dense_affinity(self, x: torch.Tensor, queries: Queries = None) -> torch.Tensor:
        """The affinity A the block applies to its values for input ``x``, shape (B, N, M)
        (N = H * W queries, M keys on :meth:`key_grid`), from the dense reference path; only
        the rows ``queries`` (flat query positions) when given: (B, Q, M)."""
        raise NotImplementedError
