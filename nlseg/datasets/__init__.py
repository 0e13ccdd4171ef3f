"""Dataset classes, registered in ``mmseg.registry.DATASETS`` on import."""
