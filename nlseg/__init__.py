"""nlseg: global-context decode heads for MMSegmentation 1.x.

Importing this package

* registers every nlseg module (heads, datasets, metrics, hooks, the bf16
  ``AutocastOptimWrapper``) in mmseg's registries,
* allowlists exactly the globals that mmengine/mmseg checkpoints hold, so that those
  checkpoints load under torch's default ``weights_only=True`` (torch >= 2.6), and
* makes mmengine's local checkpoint loader explain a refused or truncated file.

Importing it twice is harmless: Python caches the module and every registration runs once.
"""
from .version import __version__
from .utils.checkpoint import allow_mmengine_checkpoint_globals, install_checkpoint_loader

allow_mmengine_checkpoint_globals()
install_checkpoint_loader()

from . import datasets, engine, evaluation, models, ops  # noqa: E402,F401  (registers)

__all__ = ['__version__', 'allow_mmengine_checkpoint_globals']
