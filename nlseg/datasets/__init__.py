"""Dataset classes, registered in ``mmseg.registry.DATASETS`` on import."""
from .camvid import CamVidDataset
from .synthetic_context import SyntheticContextDataset
from .synthetic_regions import SyntheticRegionsDataset
from .wbc import WBCDataset

__all__ = ['CamVidDataset', 'SyntheticContextDataset', 'SyntheticRegionsDataset', 'WBCDataset']
