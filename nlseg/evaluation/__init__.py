"""Metrics, registered in ``mmseg.registry.METRICS`` on import."""
from .class_iou_metric import ClassIoUMetric

__all__ = ['ClassIoUMetric']
