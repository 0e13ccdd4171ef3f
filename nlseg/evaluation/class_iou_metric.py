"""mmseg's IoUMetric, with the per-class figures in its returned metrics."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class ClassIoUMetric(IoUMetric):
    """Like :class:`mmseg.evaluation.IoUMetric` (same arguments, same printed table), but
    the returned metrics also hold ``IoU.<class>`` (and ``Acc.<class>``, ...) for every
    class, in percent, so that they reach the logs and the metrics JSON of ``tools/test.py``.
    """

    def compute_metrics(self, results: list) -> dict[str, float]:
        metrics = super().compute_metrics(results)
        results = tuple(zip(*results))
        ret = self.total_area_to_metrics(
            sum(results[0]), sum(results[1]), sum(results[2]), sum(results[3]),
            self.metrics, self.nan_to_num, self.beta)
        classes = self.dataset_meta['classes']
        per_class = OrderedDict()
        for key, values in ret.items():
            if key == 'aAcc':
                continue
            for name, value in zip(classes, np.asarray(values)):
                per_class[f'{key}.{name}'] = float(np.round(value * 100, 2))
        metrics.update(per_class)
        return metrics
