"""The kernel registry: every kernel with two exact paths that a block's ``impl`` picks from.

One file per kernel, each holding the kernel's math (its affinity, its dense path that
materialises the N x M affinity and its efficient path that never does), its example inputs
and its :class:`~nlseg.ops.kernels.common.Kernel` record ``KERNEL``:

- :mod:`.softmax`: ``'softmax'``, softmax_j(scale q_i . k_j) v_j (NL gaussian and
  embedded_gaussian, ARNLB);
- :mod:`.dot_product`: ``'dot_product'``, (q k^T / M) v against q (k^T v) / M (NL
  dot_product);
- :mod:`.concatenation`: ``'concatenation'``, relu(a_i + b_j) / M applied to v, dense against
  query chunks (NL concatenation);
- :mod:`.relu_dot`: ``'relu_dot'``, the SNL/gSNL normalised low-rank symmetric affinity A v,
  dense against the associative product (also NS 'symmetric_relu_dot');
- :mod:`.ns_stage`: ``'ns_stage'``, the NS stage's shared softmax affinity applied per unit,
  and the symmetric shared-embedding kernels of NS.

:data:`KERNELS` maps each name to its record. The names are the vocabulary of the blocks'
``kernel`` attribute, of :mod:`nlseg.ops.impl_choice` (``impl='auto'``) and of the measured
crossover table ``crossovers.json`` (package data next to this file, written by
``tools/analysis/calibrate_impl.py --write``, which times ``KERNELS[name].dense`` against
``KERNELS[name].efficient``).
"""
from __future__ import annotations

import os.path as osp

from nlseg.validation import check_choice
from . import concatenation, dot_product, ns_stage, relu_dot, softmax
from .common import Kernel, apply_affinity

__all__ = ['Kernel', 'KERNELS', 'CROSSOVERS_PATH', 'get_kernel', 'check_kernel',
           'apply_affinity']

#: name -> :class:`Kernel`, in the order of the measured table's rows.
KERNELS: dict[str, Kernel] = {k.name: k for k in (
    softmax.KERNEL, dot_product.KERNEL, concatenation.KERNEL, relu_dot.KERNEL, ns_stage.KERNEL)}

#: The measured crossover table (package data): see :mod:`nlseg.ops.impl_choice`.
CROSSOVERS_PATH = osp.join(osp.dirname(osp.abspath(__file__)), 'crossovers.json')


def check_kernel(name: str) -> str:
    """``name`` when it is a key of :data:`KERNELS`; ValueError naming the keys otherwise."""
    check_choice('kernel', name, tuple(KERNELS))
    return name


def get_kernel(name: str) -> Kernel:
    """The registered :class:`Kernel` called ``name`` (ValueError naming the keys)."""
    return KERNELS[check_kernel(name)]
