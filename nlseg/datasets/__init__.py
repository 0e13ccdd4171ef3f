"""Dataset classes, registered in ``mmseg.registry.DATASETS`` on import."""
from .camvid import CamVidDataset
from .synthetic_context import SyntheticContextDataset
from .wbc import WBCDataset

__all__ = ['CamVidDataset', 'SyntheticContextDataset', 'WBCDataset']
