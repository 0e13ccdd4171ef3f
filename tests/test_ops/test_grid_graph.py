"""grid_graph: the 4-neighbour grid with unit weights (the paper's local TV, ref. [10])."""
import pytest
import torch

from nlseg.ops.graph_operators import graph_divergence, graph_gradient, graph_norm_bound
from nlseg.ops.grid_graph import grid_graph


def test_structure_and_border():
    index, weight = grid_graph(2, 3, 4)
    assert index.shape == weight.shape == (2, 12, 4)
    assert index.dtype == torch.long and weight.dtype == torch.float32
    # centre pixel (1, 1) = 5: up 1, left 4, right 6, down 9, all weight 1
    assert index[0, 5].tolist() == [1, 4, 6, 9] and weight[0, 5].tolist() == [1, 1, 1, 1]
    # corner (0, 0): no up, no left neighbour (self loops of weight 0)
    assert index[1, 0].tolist() == [0, 0, 1, 4] and weight[1, 0].tolist() == [0, 0, 1, 1]
    assert weight.sum() == 2 * 2 * (3 * 3 + 2 * 4)  # each grid edge from both ends
    assert grid_graph(1, 2, 2, dtype=torch.float64)[1].dtype == torch.float64


def test_tv_is_twice_the_anisotropic_tv_and_operators_are_adjoint():
    g = torch.Generator().manual_seed(0)
    u = torch.rand(1, 2, 5, 6, generator=g, dtype=torch.float64)
    index, weight = grid_graph(1, 5, 6, dtype=torch.float64)
    grad = graph_gradient(u.flatten(2), index, weight)
    anisotropic = (u[..., 1:, :] - u[..., :-1, :]).abs().sum() + \
        (u[..., :, 1:] - u[..., :, :-1]).abs().sum()
    assert torch.allclose(grad.abs().sum(), 2 * anisotropic)
    v = torch.rand(grad.shape, generator=g, dtype=torch.float64)
    assert torch.allclose((grad * v).sum(), -(u.flatten(2) * graph_divergence(v, index,
                                                                             weight)).sum())
    assert graph_norm_bound(index, weight).item() == 16.0  # 2 (4 out + 4 in)


@pytest.mark.parametrize('bad', [dict(batch=0), dict(height=2.0), dict(width=True)])
def test_bad_sizes(bad):
    args = dict(batch=1, height=2, width=2)
    args.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        grid_graph(**args)


def test_grid_graph_takes_traced_sizes():
    """FLOP counters trace shapes as 0-dim integer tensors: same graph as from ints."""
    ref = grid_graph(2, 3, 4)
    got = grid_graph(torch.tensor(2), torch.tensor(3), torch.tensor(4))
    assert all(torch.equal(a, b) for a, b in zip(ref, got))
    for bad in (torch.tensor(2.0), torch.tensor([2]), torch.tensor(0)):
        with pytest.raises(ValueError, match='batch must be an int >= 1'):
            grid_graph(bad, 3, 4)
