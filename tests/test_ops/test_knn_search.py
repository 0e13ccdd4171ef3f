"""The exact kNN search of eq. 11: dense and windowed searches equal the brute force, index for
index and weight for weight, on synthetic worst cases, feature and logit maps, and real images.
"""
import glob
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from nlseg.ops.knn_graph import knn_graph, resolve_knn_impl
from nlseg.ops.knn_search import pair_distance, position_term, take_k_nearest, windowed_knn
from tests.helpers import one_thread_fixture, read_rgb, real_data_dir

SA, SB = 40.0, 13.0 / 255.0


one_thread = pytest.fixture(autouse=True)(one_thread_fixture)


def brute_force(feats, k, sa=SA, sb=SB):
    """All N x N distances (the module's one distance), a stable sort, the first k by
    (distance, index), returned in index order."""
    b, c, h, w = feats.shape
    n = h * w
    f = feats.flatten(2)
    ys, xs = torch.arange(n) // w, torch.arange(n) % w
    dp2 = (ys[:, None] - ys[None]).square() + (xs[:, None] - xs[None]).square()
    out = []
    for i in range(b):
        d = pair_distance(f[i][:, :, None], f[i][:, None, :],
                          position_term(dp2, 1 / (2 * sa), f.dtype), 1 / (2 * sb))
        d.fill_diagonal_(math.inf)
        order = d.sort(dim=1, stable=True).indices[:, :k]
        out.append(order.sort(dim=1).values)
    return torch.stack(out)


def worst_cases(h=24, w=30):
    g = torch.Generator().manual_seed(0)
    x = torch.arange(w).view(1, 1, 1, w).expand(1, 3, h, w)
    return {
        'flat': torch.full((1, 3, h, w), 0.5),  # ties everywhere: only positions differ
        'noise': torch.rand(1, 3, h, w, generator=g),  # no spatial coherence
        'stripes': ((x // 3) % 2).float().contiguous(),  # 1-D structure, exact ties
        'quantised': (torch.rand(1, 3, h, w, generator=g) * 4).floor() / 4,
        'checkerboard': ((torch.arange(h).view(h, 1) + torch.arange(w)) % 2).float()
        .expand(1, 3, h, w).contiguous(),
        'smooth': F.interpolate(torch.rand(1, 3, 4, 5, generator=g), size=(h, w),
                                mode='bilinear', align_corners=False),
        'isolated': torch.zeros(1, 3, h, w).index_put_(
            (torch.tensor([0]), torch.tensor([1]), torch.tensor([5]), torch.tensor([7])),
            torch.tensor([1.0])),  # one odd pixel: its kNN lies far away
    }


def assert_same_graph(feats, k, **kwargs):
    ref = brute_force(feats, k)
    graphs = {impl: knn_graph(feats, k=k, impl=impl, **kwargs)
              for impl in ('dense', 'efficient')}
    for impl, (index, _) in graphs.items():
        assert torch.equal(index, ref), (impl, (index != ref).sum().item())
    assert torch.equal(graphs['dense'][1], graphs['efficient'][1])
    return graphs['efficient']


@pytest.mark.parametrize('case', sorted(worst_cases()))
@pytest.mark.parametrize('k', [1, 4, 10, 20])
def test_worst_cases_equal_brute_force(case, k):
    assert_same_graph(worst_cases()[case], k)


@pytest.mark.parametrize('radius', [2, 5])
def test_window_radius_and_chunks_do_not_change_the_graph(radius):
    feats = worst_cases()['smooth']
    assert_same_graph(feats, 10, window_radius=radius, chunk_size=17)


def test_feature_and_logit_graphs_equal_brute_force():
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(2, 64, 16, 18, generator=g), dim=1)  # 'l2' features
    assert_same_graph(feats, 10)
    logits = torch.randn(1, 5, 20, 20, generator=g) * 3
    assert_same_graph(logits, 8)


def test_float64_and_batches():
    feats = worst_cases()['smooth'].double().repeat(2, 1, 1, 1)
    feats[1] = feats[1].flip(-1)
    index, weight = assert_same_graph(feats, 6)
    assert weight.dtype == torch.float64


def test_windowed_search_certifies_smooth_images_and_falls_back_on_noise():
    """The bound proves most rows of a smooth colour image in the first window; on noise
    (no pixel's nearest colours are near it) few are proved and the dense search takes over
    (the result is the same either way: the tests above)."""
    inv_a, inv_b = 1 / (2 * SA), 1 / (2 * SB)
    smooth = F.interpolate(torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0)),
                           size=(60, 60), mode='bilinear', align_corners=False)
    _, _, stats = windowed_knn(smooth[0].flatten(1), 60, 60, 10, inv_a, inv_b)
    r, searched, proved = stats['levels'][0]
    assert searched == 3600 and proved > 0.95 * searched
    noise = torch.rand(1, 3, 60, 60, generator=torch.Generator().manual_seed(0))
    _, _, stats = windowed_knn(noise[0].flatten(1), 60, 60, 10, inv_a, inv_b)
    assert stats['dense_rows'] > 0.5 * 3600


def test_dense_search_recovers_rows_the_proposal_cannot_prove(monkeypatch):
    """Features of large norm: the rounding bound of the proposal (|f|^2 ~ 1e6) exceeds every
    distance, no row is proved, every row goes to the exact search, and the graph is still
    the brute force's."""
    import nlseg.ops.knn_search as knn_search
    calls = []
    exact_rows = knn_search._exact_rows
    monkeypatch.setattr(knn_search, '_exact_rows',
                        lambda f, rows, *a: calls.append(rows.numel()) or exact_rows(f, rows,
                                                                                    *a))
    g = torch.Generator().manual_seed(0)
    feats = 1000.0 + torch.rand(1, 2, 9, 10, generator=g) * 0.05
    index, _ = knn_graph(feats, k=8, impl='dense')
    assert calls == [90]
    assert torch.equal(index, brute_force(feats, 8))


def test_take_k_nearest_breaks_ties_by_index():
    d = torch.tensor([[3.0, 1.0, 2.0, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    j = torch.tensor([[10, 11, 12, 13, 14, 15], [0, 1, 2, 3, 4, 5]])
    dk, jk = take_k_nearest(d, j, 3)
    assert jk.tolist() == [[11, 12, 13], [0, 1, 2]]
    assert dk.tolist() == [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0]]
    dk, jk = take_k_nearest(d[:, :2], j[:, :2], 4)  # fewer candidates than k: inf, no error
    assert torch.isinf(dk[:, 2:]).all()


def test_auto_takes_the_window_for_few_channels_and_large_maps():
    assert resolve_knn_impl('auto', 300 * 300, 3, k=20) == 'efficient'
    assert resolve_knn_impl('auto', 64 * 64, 512, k=10) == 'dense'
    assert resolve_knn_impl('auto', 10 * 10, 3, k=10) == 'dense'
    assert resolve_knn_impl('auto', 300 * 300, 3, traced=True, k=20) == 'dense'
    assert resolve_knn_impl('efficient', 10, 3) == 'efficient'
    with pytest.raises(ValueError, match='impl'):
        knn_graph(torch.rand(1, 3, 4, 4), k=3, impl='fast')
    with pytest.raises(ValueError, match='feats must be finite'):
        knn_graph(torch.full((1, 3, 4, 4), float('nan')), k=3)
    with pytest.raises(ValueError, match='window_radius'):
        knn_graph(torch.rand(1, 3, 4, 4), k=3, window_radius=0)


def _crops(paths, size, count):
    g = torch.Generator().manual_seed(0)
    for path in paths[:count]:
        img = read_rgb(path)
        h, w = img.shape[2:]
        y = int(torch.randint(0, h - size[0] + 1, (1,), generator=g))
        x = int(torch.randint(0, w - size[1] + 1, (1,), generator=g))
        yield img[:, :, y:y + size[0], x:x + size[1]].contiguous()


@pytest.mark.real_data
def test_real_wbc_image_graphs_equal_brute_force():
    """The paper's WBC graph (d = 20, image colours) on crops of the published images."""
    paths = sorted(glob.glob(osp.join(real_data_dir('wbc-dataset2'), '*.bmp')))
    assert len(paths) == 100
    for crop in _crops(paths[::17], (64, 72), 6):
        assert_same_graph(crop, 20)


@pytest.mark.real_data
def test_real_camvid_image_graphs_equal_brute_force():
    """The paper's CamVid graph (d = 10, image colours) on crops of the published images."""
    paths = sorted(glob.glob(osp.join(real_data_dir('camvid-segnet'), 'test', '*.png')))
    assert len(paths) == 233
    for crop in _crops(paths[::47], (60, 80), 5):
        assert_same_graph(crop, 10)


@pytest.mark.parametrize('chunk_elements', [1, 49 * 30 * 7])
def test_window_bands_of_image_rows_give_the_same_graph(monkeypatch, chunk_elements):
    """Large maps are searched in bands of image rows (bounded memory): bands of 1 and 7
    rows, windows reaching across band borders and the image border."""
    import nlseg.ops.knn_search as knn_search
    monkeypatch.setattr(knn_search, '_CHUNK_ELEMENTS', chunk_elements)
    for case in ('smooth', 'stripes', 'isolated'):
        assert_same_graph(worst_cases()[case], 10)
