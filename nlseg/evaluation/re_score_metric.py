"""REScoreMetric: the RE ("regularisation effect") score of the NLTV paper.

Jia, Tai, Liu report beside mIoU an RE score, "defined in [10]" (Jia, Liu, Tai, "A regularized
convolutional neural network for semantic image segmentation"), that "measures the
regularization effect of segmentation result. Segmentation results with lower RE scores have
smoother edges and less isolated regions" (their sec. 4; Tables 1-3: e.g. WBC U-Net 1.82,
with the local regulariser 1.30, NLTV 1.59; CamVid SegNet 4.10 / 2.43 / 3.40). The paper
gives no formula; we compute the RE score as the number of connected regions of the
prediction relative to that of the ground truth,

    RE = mean over images of  #regions(prediction) / #regions(ground truth),

a region being a maximal connected set of pixels of one class (4- or 8-connectivity): every
isolated point or region a prediction adds raises it, a prediction with the ground truth's
regions scores 1, and the reported values (all > 1, higher on CamVid's cluttered scenes) have
this form. Pixels whose ground truth is ``ignore_index`` are left out on both sides: a
ground-truth region of the ignore label is not counted, nor a predicted region made only of
ignored pixels (as :class:`IsolatedRegionMetric` counts them); an image whose ground truth is
all ignored has no score and is skipped.

The regions are counted by :class:`~nlseg.evaluation.IsolatedRegionMetric` (its vectorised
union-find); this metric adds the ground-truth count and the ratio.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from mmseg.registry import METRICS

from .isolated_region_metric import IsolatedRegionMetric

__all__ = ['REScoreMetric']


@METRICS.register_module()
class REScoreMetric(IsolatedRegionMetric):
    """Mean ratio of predicted to ground-truth connected regions per image (RE score).

    Args:
        connectivity: 4 or 8 (both maps use the same).
        ignore_index: ground-truth label left out of both counts; None counts every pixel.
        collect_device, prefix: as in :class:`mmengine.evaluator.BaseMetric`.

    Metrics: ``RE`` (the score), ``regions`` and ``gt_regions`` (the mean counts per scored
    image).
    """

    def __init__(self, connectivity: int = 4, ignore_index: Optional[int] = 255,
                 collect_device: str = 'cpu', prefix: Optional[str] = None, **kwargs) -> None:
        super().__init__(size_threshold=1, connectivity=connectivity,
                         ignore_index=ignore_index, collect_device=collect_device,
                         prefix=prefix, **kwargs)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if not isinstance(sample.get('gt_sem_seg'), dict):
                raise KeyError('REScoreMetric needs the ground truth (gt_sem_seg) of every '
                               'sample: it divides by the number of ground-truth regions')
            pred = sample['pred_sem_seg']['data'].squeeze(0)
            gt = sample['gt_sem_seg']['data'].squeeze(0).to(pred.device)
            _, regions = self.count(pred, gt)
            _, gt_regions = self.count(gt, gt)
            self.results.append((regions, gt_regions))

    def compute_metrics(self, results: list) -> dict:
        counts = np.asarray(results, dtype=np.float64).reshape(-1, 2)
        counts = counts[counts[:, 1] > 0]  # images with a scored ground truth
        if not len(counts):
            return dict(RE=float('nan'), regions=0.0, gt_regions=0.0)
        return dict(RE=float((counts[:, 0] / counts[:, 1]).mean()),
                    regions=float(counts[:, 0].mean()), gt_regions=float(counts[:, 1].mean()))
