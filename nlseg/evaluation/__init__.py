"""Metrics, registered in ``mmseg.registry.METRICS`` on import."""
