"""Former home of fused softmax attention: a re-export of :mod:`nlseg.ops.kernels.softmax`
(the ``'softmax'`` kernel, which holds the code and its notes), kept for existing imports."""
from .kernels.softmax import FUSED_SDPA_BACKENDS, softmax_attention

__all__ = ['softmax_attention', 'FUSED_SDPA_BACKENDS']
