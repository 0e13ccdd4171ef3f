# mmseg's runtime settings, plus nlseg's RNGStateHook: checkpoints also hold torch's random
# generator state, so a run resumed with --resume draws the same dropout masks and Hamburger
# bases as an uninterrupted one and ends at the same weights (docs/reliability.md).
_base_ = ['mmseg::_base_/default_runtime.py']
custom_hooks = [dict(type='RNGStateHook')]
