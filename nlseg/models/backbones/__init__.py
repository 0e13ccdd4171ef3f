"""Backbones and backbone wrappers registered in mmseg's ``MODELS``."""
from .with_image_level import *  # noqa: F401,F403
from .block_plugins import *  # noqa: F401,F403
from .resnet_with_inserts import *  # noqa: F401,F403
