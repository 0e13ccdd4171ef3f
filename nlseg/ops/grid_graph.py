"""The 4-neighbour pixel grid as a graph: the LOCAL TV of the NLTV paper's middle column.

Jia, Tai, Liu, "Nonlocal regularized CNN for image segmentation", sec. 3.5 and Fig. 1, and
their ref. [10] (Jia, Liu, Tai, "A regularized convolutional neural network for semantic image
segmentation"; RUnet / RSegnet in Tables 1-3): "each pixel has 4 neighbors and the weights of
edges are set to 1". With this graph the NLTV of eq. 26,

    NLTV_w(u) = sum_i sum_{j in N(i)} w_ij |u_j - u_i|,

is the anisotropic TV of u on the pixel grid (each horizontal and vertical pair counted from
both ends, as in the paper's directed neighbour sums), and the solver of
:mod:`nlseg.ops.nltv_softmax` runs on it unchanged.

Stored as every graph of :mod:`nlseg.ops.graph_operators`: ``index`` (B, N, 4) and ``weight``
(B, N, 4), N = H W row-major, neighbours in index order (up, left, right, down). A pixel on
the border has fewer than 4 neighbours: a missing one is stored as an edge to itself with
weight 0, which adds nothing to the gradient, the divergence or the norm bound.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

__all__ = ['grid_graph']


def grid_graph(batch: int, height: int, width: int, device: Optional[torch.device] = None,
               dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
    """The 4-neighbour grid graph with unit weights, (index, weight) each (B, H W, 4).

    Args:
        batch, height, width: B >= 1 and the map's H, W >= 1 (ints, or 0-dim integer
            tensors as tracing gives sizes).
        device, dtype: of the result (``weight``'s dtype; ``index`` is long).
    """
    sizes = []
    for name, value in (('batch', batch), ('height', height), ('width', width)):
        if isinstance(value, torch.Tensor) and value.dim() == 0 and \
                not value.is_floating_point() and value.dtype != torch.bool:
            value = int(value)  # a traced size (FLOP counters trace shapes as tensors)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be an int >= 1, got {value!r}')
        sizes.append(value)
    batch, height, width = sizes
    n = height * width
    i = torch.arange(n, device=device)
    y, x = i // width, i % width
    offsets = ((-width, y > 0), (-1, x > 0), (1, x < width - 1), (width, y < height - 1))
    index = torch.stack([torch.where(valid, i + step, i) for step, valid in offsets], dim=1)
    weight = torch.stack([valid for _, valid in offsets], dim=1).to(dtype)
    return index.expand(batch, n, 4).contiguous(), weight.expand(batch, n, 4).contiguous()
