"""Former home of the dense affinities and associative products of the non-local family: a
re-export of :mod:`nlseg.ops.kernels` (one file per kernel), kept for existing imports.

softmax: :mod:`nlseg.ops.kernels.softmax`; dot_product: :mod:`nlseg.ops.kernels.dot_product`;
relu_dot (SNL/gSNL): :mod:`nlseg.ops.kernels.relu_dot`; A v for any dense affinity:
:func:`nlseg.ops.kernels.common.apply_affinity`.
"""
from .kernels.common import apply_affinity
from .kernels.dot_product import dot_product_affinity, dot_product_attention
from .kernels.relu_dot import NORMALIZATIONS, normalize_affinity, relu_dot_affinity, \
    relu_dot_affinity_rows, relu_dot_attention
from .kernels.softmax import softmax_affinity

__all__ = [
    'NORMALIZATIONS', 'softmax_affinity', 'dot_product_affinity', 'dot_product_attention',
    'relu_dot_affinity', 'normalize_affinity', 'relu_dot_attention', 'relu_dot_affinity_rows',
    'apply_affinity'
]
