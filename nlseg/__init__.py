"""nlseg: global-context decode heads for MMSegmentation 1.x.

Importing this package

* registers every nlseg module (heads, datasets, metrics) in mmseg's registries, and
* allowlists exactly the globals that mmengine/mmseg checkpoints hold, so that those
  checkpoints load under torch's default ``weights_only=True`` (torch >= 2.6).

Importing it twice is harmless: Python caches the module and every registration runs once.
"""
from .version import __version__
from .utils.checkpoint import allow_mmengine_checkpoint_globals

allow_mmengine_checkpoint_globals()

from . import datasets, evaluation, models, ops  # noqa: E402,F401  (registers modules)

__all__ = ['__version__', 'allow_mmengine_checkpoint_globals']
