"""IsolatedRegionMetric: union-find connected components against a BFS reference."""
from collections import deque

import pytest
import torch

from nlseg.evaluation.isolated_region_metric import IsolatedRegionMetric, connected_components


def bfs_components(labels, connectivity):
    h, w = len(labels), len(labels[0])
    comp = [[-1] * w for _ in range(h)]
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    sizes = []
    for y in range(h):
        for x in range(w):
            if comp[y][x] >= 0:
                continue
            cid, queue, size = len(sizes), deque([(y, x)]), 0
            comp[y][x] = cid
            while queue:
                cy, cx = queue.popleft()
                size += 1
                for dy, dx in steps:
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and comp[ny][nx] < 0 \
                            and labels[ny][nx] == labels[cy][cx]:
                        comp[ny][nx] = cid
                        queue.append((ny, nx))
            sizes.append(size)
    return torch.tensor(comp), sizes


@pytest.mark.parametrize('connectivity', [4, 8])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_bfs(connectivity, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (23, 31), generator=g)
    comp = connected_components(labels, connectivity)
    ref, sizes = bfs_components(labels.tolist(), connectivity)
    # same partition: a bijection between component ids
    pairs = set(zip(comp.flatten().tolist(), ref.flatten().tolist()))
    assert len(pairs) == len(sizes) == len(set(comp.flatten().tolist()))
    metric = IsolatedRegionMetric(size_threshold=3, connectivity=connectivity, ignore_index=None)
    assert metric.count(labels) == (sum(s < 3 for s in sizes), len(sizes))


def test_spiral_and_diagonal():
    # a long snake is one component; a diagonal line is 1 component in 8-conn, n in 4-conn
    labels = torch.zeros(9, 9, dtype=torch.long)
    labels[::2, :] = 1
    labels[1::4, -1] = 1
    labels[3::4, 0] = 1
    assert len(connected_components(labels, 4).unique()) == 5  # snake + 4 background pieces
    diag = torch.eye(6, dtype=torch.long)
    assert len(connected_components(diag, 8)[diag == 1].unique()) == 1
    assert len(connected_components(diag, 4)[diag == 1].unique()) == 6


def test_metric_process_and_compute():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    pred = torch.zeros(1, 10, 10, dtype=torch.long)
    pred[0, 2, 2] = 1  # isolated pixel
    pred[0, 5:9, 5:9] = 2  # 16-pixel block
    pred[0, 0, 9] = 3  # isolated, but on an ignored pixel
    gt = torch.zeros(1, 10, 10, dtype=torch.long)
    gt[0, 0, 9] = 255
    samples = []
    for p in (pred, torch.zeros_like(pred)):
        s = SegDataSample(pred_sem_seg=PixelData(data=p), gt_sem_seg=PixelData(data=gt))
        samples.append(s.to_dict())
    metric = IsolatedRegionMetric(size_threshold=4)
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    metric.process({}, samples)
    res = metric.evaluate(2)
    # image 1: components background, pixel, block (+ ignored pixel not counted): 1 isolated
    assert res == dict(isolated_regions=0.5, regions=2.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match='connectivity'):
        IsolatedRegionMetric(connectivity=6)
    with pytest.raises(ValueError, match='size_threshold'):
        IsolatedRegionMetric(size_threshold=0)
    with pytest.raises(ValueError, match='connectivity'):
        connected_components(torch.zeros(3, 3), connectivity=2)
