from .checkpoint import allow_mmengine_checkpoint_globals, mmengine_checkpoint_globals
from .complexity import build_eval_segmentor, complexity_info  # noqa: F401

__all__ = ['allow_mmengine_checkpoint_globals', 'mmengine_checkpoint_globals']
