"""Former home of the NL concatenation affinity: a re-export of
:mod:`nlseg.ops.kernels.concatenation` (the ``'concatenation'`` kernel), kept for existing
imports."""
from .kernels.concatenation import concatenation_affinity, concatenation_attention, \
    concatenation_logits

__all__ = ['concatenation_logits', 'concatenation_affinity', 'concatenation_attention']
