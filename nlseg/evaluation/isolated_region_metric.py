"""IsolatedRegionMetric: small predicted connected components per image.

Counts, per image, the connected components of the predicted label map (a component is a
maximal connected set of pixels of one class, 4- or 8-connectivity) smaller than
``size_threshold`` pixels: the isolated points and regions that the NLTV-regularised softmax
(Jia, Tai, Liu, sec. 4: the "RE score" of their ref. [10]) is meant to remove. Reported beside
mIoU as the mean over images. Connected components are labelled with a vectorised union-find
in torch (hooking of roots to the smaller root + pointer jumping), no scipy.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS

__all__ = ['IsolatedRegionMetric', 'connected_components']


def _edges(labels: torch.Tensor, connectivity: int):
    """Pairs (a, b) of flat indices of neighbouring pixels with the same label."""
    h, w = labels.shape
    idx = torch.arange(h * w, device=labels.device).view(h, w)
    shifts = [(slice(None), slice(None, -1), slice(None), slice(1, None)),  # right
              (slice(None, -1), slice(None), slice(1, None), slice(None))]  # down
    if connectivity == 8:
        shifts += [(slice(None, -1), slice(None, -1), slice(1, None), slice(1, None)),
                   (slice(None, -1), slice(1, None), slice(1, None), slice(None, -1))]
    pa, pb = [], []
    for ya, xa, yb, xb in shifts:
        same = labels[ya, xa] == labels[yb, xb]
        pa.append(idx[ya, xa][same])
        pb.append(idx[yb, xb][same])
    return torch.cat(pa), torch.cat(pb)


def connected_components(labels: torch.Tensor, connectivity: int = 4) -> torch.Tensor:
    """Component id of every pixel of a (H, W) label map: (H, W) long tensor whose value is
    the smallest flat index in the pixel's component (pixels of one class only)."""
    if connectivity not in (4, 8):
        raise ValueError(f'connectivity must be 4 or 8, got {connectivity!r}')
    if labels.dim() != 2:
        raise ValueError(f'labels must be a (H, W) map, got shape {tuple(labels.shape)}')
    h, w = labels.shape
    a, b = _edges(labels, connectivity)
    parent = torch.arange(h * w, device=labels.device)
    while a.numel():
        ra, rb = parent[a], parent[b]
        diff = ra != rb
        if not bool(diff.any()):
            break
        a, b, ra, rb = a[diff], b[diff], ra[diff], rb[diff]
        # hook the larger root onto the smaller one (parent[v] <= v always)
        parent.scatter_reduce_(0, torch.maximum(ra, rb), torch.minimum(ra, rb), 'amin')
        while True:  # pointer jumping until every node points at a root
            grand = parent[parent]
            if torch.equal(grand, parent):
                break
            parent = grand
    return parent.view(h, w)


@METRICS.register_module()
class IsolatedRegionMetric(BaseMetric):
    """Mean number per image of predicted connected components smaller than a threshold.

    Args:
        size_threshold: components with fewer pixels than this are isolated regions.
        connectivity: 4 or 8.
        ignore_index: pixels whose ground truth is this label are not counted (a component
            made only of ignored pixels is not an isolated region); None counts every pixel.
        collect_device, prefix: as in :class:`mmengine.evaluator.BaseMetric`.

    Metrics: ``isolated_regions`` (mean count per image of components smaller than the
    threshold) and ``regions`` (mean count per image of all components).
    """

    default_prefix: Optional[str] = None

    def __init__(self, size_threshold: int = 64, connectivity: int = 4,
                 ignore_index: Optional[int] = 255, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(size_threshold, bool) or not isinstance(size_threshold, int) \
                or size_threshold < 1:
            raise ValueError(f'size_threshold must be an int >= 1, got {size_threshold!r}')
        if connectivity not in (4, 8):
            raise ValueError(f'connectivity must be 4 or 8, got {connectivity!r}')
        self.size_threshold = size_threshold
        self.connectivity = connectivity
        self.ignore_index = ignore_index

    def count(self, pred: torch.Tensor, gt: Optional[torch.Tensor] = None):
        """(isolated, total) component counts of one (H, W) prediction."""
        comp = connected_components(pred.cpu(), self.connectivity).flatten()
        sizes = torch.bincount(comp, minlength=comp.numel())
        counted = sizes > 0
        if gt is not None and self.ignore_index is not None:
            valid = (gt.cpu().flatten() != self.ignore_index).long()
            counted &= torch.zeros_like(sizes).scatter_add_(0, comp, valid) > 0
        small = counted & (sizes < self.size_threshold)
        return int(small.sum()), int(counted.sum())

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze(0)
            gt = sample.get('gt_sem_seg', {}).get('data') if isinstance(
                sample.get('gt_sem_seg'), dict) else None
            if gt is not None:
                gt = gt.squeeze(0).to(pred.device)
            self.results.append(self.count(pred, gt))

    def compute_metrics(self, results: list) -> dict:
        counts = np.asarray(results, dtype=np.float64).reshape(-1, 2)
        return dict(isolated_regions=float(counts[:, 0].mean()) if len(counts) else 0.0,
                    regions=float(counts[:, 1].mean()) if len(counts) else 0.0)
