"""One vocabulary for how gradients flow through an iterative solver unrolled in a network.

Used by the hams of Hamburger (Geng et al. 2021, sec. 2.3) and by the NLTV primal-dual solver
(Jia, Tai, Liu, sec. 3.4-3.5), which both run K iterations of an optimisation algorithm inside
the forward pass:

* ``'one_step'``: iterations 1..K-1 run without autograd; the gradient goes through the last
  update only, the earlier iterates entering it as constants (Hamburger's one-step gradient,
  eq. 13). Memory and backward time do not depend on K.
* ``'bptt'``: back-propagation through every iteration (through time), what autograd gives
  for the unrolled loop (the NLTV paper's sec. 3.4 derivation; mmseg's LightHamHead).

Older names (the NLTV solver's ``'last_step'`` and ``'unrolled'``) still work with a
``DeprecationWarning`` naming the new value (:func:`resolve_grad_mode`).
"""
from __future__ import annotations

import warnings
from typing import Mapping

__all__ = ['GRAD_MODES', 'LEGACY_GRAD_MODES', 'resolve_grad_mode']

#: the accepted values of every ``grad`` argument.
GRAD_MODES = ('one_step', 'bptt')

#: deprecated value -> the value of :data:`GRAD_MODES` with the same meaning.
LEGACY_GRAD_MODES: Mapping[str, str] = {'last_step': 'one_step', 'unrolled': 'bptt'}


def resolve_grad_mode(grad: object, owner: str, name: str = 'grad') -> str:
    """``grad`` as a value of :data:`GRAD_MODES`: a deprecated value of
    :data:`LEGACY_GRAD_MODES` is mapped to its new name with a ``DeprecationWarning``; anything
    else raises a ValueError naming the argument and the accepted values."""
    if isinstance(grad, str) and grad in LEGACY_GRAD_MODES:
        new = LEGACY_GRAD_MODES[grad]
        warnings.warn(f"{owner}: {name}={grad!r} is deprecated, use {name}={new!r} (same "
                      f"meaning; the gradient modes are {GRAD_MODES})", DeprecationWarning,
                      stacklevel=3)
        return new
    if not (isinstance(grad, str) and grad in GRAD_MODES):
        raise ValueError(f'{name} must be one of {GRAD_MODES}, got {grad!r}')
    return grad
