"""Metrics, registered in ``mmseg.registry.METRICS`` on import."""
from .class_iou_metric import ClassIoUMetric

__all__ = ['ClassIoUMetric']
from .isolated_region_metric import IsolatedRegionMetric  # noqa: E402

__all__ += ['IsolatedRegionMetric']
from .re_score_metric import REScoreMetric  # noqa: E402

__all__ += ['REScoreMetric']
