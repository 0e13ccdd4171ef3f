"""Graph gradient / divergence (eq. 13-16): exact negative adjoint, dense reference."""
import pytest
import torch

from nlseg.ops.graph_operators import (graph_divergence, graph_gradient, graph_norm_bound,
                                       graph_operator_norm)


def random_graph(b, n, k, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    # random neighbours, duplicates and asymmetric edges allowed: the identity must hold anyway
    index = torch.randint(0, n, (b, n, k), generator=g)
    weight = torch.rand(b, n, k, generator=g, dtype=dtype) * 2
    return index, weight


@pytest.mark.parametrize('b,c,n,k,seed', [(1, 1, 5, 1, 0), (2, 3, 17, 4, 1), (3, 5, 64, 10, 2)])
def test_adjoint_identity(b, c, n, k, seed):
    index, weight = random_graph(b, n, k, seed, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed + 100)
    u = torch.randn(b, c, n, generator=g)
    v = torch.randn(b, c, n, k, generator=g)
    lhs = (graph_gradient(u, index, weight) * v).sum()
    rhs = -(u * graph_divergence(v, index, weight)).sum()
    assert torch.allclose(lhs, rhs, rtol=1e-5, atol=1e-5 * v.numel() ** 0.5)
    # float64: to rounding
    lhs64 = (graph_gradient(u.double(), index, weight.double()) * v.double()).sum()
    rhs64 = -(u.double() * graph_divergence(v.double(), index, weight.double())).sum()
    assert abs(float(lhs64 - rhs64)) < 1e-10


def dense_gradient_matrix(index, weight, n):
    """(n*k, n) matrix D with (D u)[i*k+m] = w_im (u_j - u_i), for one graph."""
    k = index.shape[1]
    d = torch.zeros(n * k, n, dtype=weight.dtype)
    for i in range(n):
        for m in range(k):
            d[i * k + m, index[i, m]] += weight[i, m]
            d[i * k + m, i] -= weight[i, m]
    return d


def test_against_dense_reference():
    index, weight = random_graph(2, 9, 3, seed=3)
    u = torch.randn(2, 4, 9, dtype=torch.float64)
    v = torch.randn(2, 4, 9, 3, dtype=torch.float64)
    gu, dv = graph_gradient(u, index, weight), graph_divergence(v, index, weight)
    for bi in range(2):
        d = dense_gradient_matrix(index[bi], weight[bi], 9)
        assert torch.allclose(gu[bi].reshape(4, -1), u[bi] @ d.T)
        assert torch.allclose(dv[bi], -(v[bi].reshape(4, -1) @ d))


def test_symmetric_graph_matches_eq16():
    # on a symmetric graph with symmetric weights: div v(i) = sum_j w_ij (v(i,j) - v(j,i))
    n = 6
    index = torch.tensor([[(i - 1) % n, (i + 1) % n] for i in range(n)]).unsqueeze(0)
    wsym = torch.rand(n, n, dtype=torch.float64)
    wsym = wsym + wsym.T
    weight = torch.stack([wsym[i, index[0, i]] for i in range(n)]).unsqueeze(0)
    v = torch.randn(1, 1, n, 2, dtype=torch.float64)
    vd = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for m in range(2):
            vd[i, index[0, i, m]] = v[0, 0, i, m]
    expected = torch.stack([sum(wsym[i, j] * (vd[i, j] - vd[j, i]) for j in index[0, i].tolist())
                            for i in range(n)])
    assert torch.allclose(graph_divergence(v, index, weight)[0, 0], expected)


def test_gradient_of_constant_is_zero():
    index, weight = random_graph(1, 20, 5)
    u = torch.full((1, 3, 20), 0.7, dtype=torch.float64)
    assert graph_gradient(u, index, weight).abs().max() == 0


def test_norm_bound_is_upper_bound():
    index, weight = random_graph(2, 50, 6, seed=5)
    est = graph_operator_norm(index, weight, iters=200)
    bound = graph_norm_bound(index, weight)
    assert (est <= bound * (1 + 1e-9)).all() and (est > 0).all()


def test_bad_shapes():
    index, weight = random_graph(1, 10, 3)
    with pytest.raises(ValueError, match='index and weight'):
        graph_gradient(torch.randn(1, 2, 10, dtype=torch.float64), index, weight[..., :2])
    with pytest.raises(ValueError, match='N = 11'):
        graph_gradient(torch.randn(1, 2, 11, dtype=torch.float64), index, weight)
    with pytest.raises(ValueError, match='k = 2'):
        graph_divergence(torch.randn(1, 2, 10, 2, dtype=torch.float64), index, weight)
