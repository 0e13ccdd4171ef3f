"""knn_graph: eq. 11 weights, k nearest by the bilateral distance, chunking, learnable params."""
import math

import pytest
import torch

from nlseg.ops.knn_graph import knn_graph


def dense_reference(feats, k, l1=1.0, l2=0.5, sa=40.0, sb=13 / 255, sg=3.0):
    b, c, h, w = feats.shape
    f = feats.double().flatten(2).transpose(1, 2)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    p = torch.stack([ys.flatten(), xs.flatten()], 1).double()
    dp = torch.cdist(p, p).square()
    out_w, out_d = [], []
    for bi in range(b):
        df = torch.cdist(f[bi], f[bi]).square()
        d = df / (2 * sb) + dp / (2 * sa)
        d.fill_diagonal_(math.inf)
        wfull = l1 * torch.exp(-dp / (2 * sa) - df / (2 * sb)) + l2 * torch.exp(-dp / (2 * sg))
        out_d.append(d)
        out_w.append(wfull)
    return torch.stack(out_d), torch.stack(out_w)


@pytest.mark.parametrize('chunk_size', [None, 1, 7, 1000])
def test_matches_dense_reference(chunk_size):
    torch.manual_seed(0)
    feats = torch.rand(2, 3, 5, 6)
    k = 4
    index, weight = knn_graph(feats, k=k, chunk_size=chunk_size)
    assert index.shape == (2, 30, k) and weight.shape == (2, 30, k)
    assert index.dtype == torch.long and weight.dtype == torch.float32
    d, wfull = dense_reference(feats, k)
    ref_d = torch.topk(d, k, dim=2, largest=False).values
    got_d = torch.gather(d, 2, index).sort(dim=2).values  # neighbours come in index order
    assert torch.allclose(got_d, ref_d, rtol=1e-5, atol=1e-6)  # the k nearest (ties aside)
    assert (index != torch.arange(30).view(1, 30, 1)).all()  # no self loops
    assert torch.allclose(weight.double(), torch.gather(wfull, 2, index), rtol=1e-5, atol=1e-6)


def test_nearest_by_position_on_constant_features():
    index, weight = knn_graph(torch.zeros(1, 2, 5, 5), k=4)
    centre = 2 * 5 + 2
    assert sorted(index[0, centre].tolist()) == [7, 11, 13, 17]
    expected = math.exp(-1 / 80) + 0.5 * math.exp(-1 / 6)
    assert torch.allclose(weight[0, centre], torch.full((4,), expected))


def test_learnable_parameters_and_features_get_gradients():
    feats = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    params = {name: torch.tensor(val, dtype=torch.float64, requires_grad=True)
              for name, val in dict(lambda1=1.0, lambda2=0.5, sigma_a=40.0, sigma_b=0.05,
                                    sigma_g=3.0).items()}
    index, weight = knn_graph(feats, k=3, **params)
    assert not index.requires_grad
    weight.sum().backward()
    for name, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad) and p.grad != 0, name
    assert feats.grad is not None and feats.grad.abs().sum() > 0


def test_autocast_bf16_selection_in_float32():
    feats = torch.rand(1, 8, 6, 6)
    ref = knn_graph(feats, k=5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = knn_graph(feats.bfloat16(), k=5)
    assert got[1].dtype == torch.float32 and torch.isfinite(got[1]).all()
    ref_b = knn_graph(feats.bfloat16().float(), k=5)
    assert torch.equal(got[0], ref_b[0]) and torch.allclose(got[1], ref_b[1])
    assert ref[0].shape == got[0].shape


@pytest.mark.parametrize('k', [0, -1, 16, 20, 2.5, True])
def test_bad_k(k):
    with pytest.raises(ValueError, match='k must'):
        knn_graph(torch.rand(1, 2, 4, 4), k=k)


@pytest.mark.parametrize('name', ['sigma_a', 'sigma_b', 'sigma_g'])
def test_bad_sigma(name):
    with pytest.raises(ValueError, match=name):
        knn_graph(torch.rand(1, 2, 4, 4), k=3, **{name: 0.0})


def test_bad_lambda_and_shape():
    with pytest.raises(ValueError, match='lambda2'):
        knn_graph(torch.rand(1, 2, 4, 4), k=3, lambda2=-1.0)
    with pytest.raises(ValueError, match='feats'):
        knn_graph(torch.rand(2, 4, 4), k=3)
    with pytest.raises(ValueError, match='chunk_size'):
        knn_graph(torch.rand(1, 2, 4, 4), k=3, chunk_size=0)
