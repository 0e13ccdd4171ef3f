"""Backbones and backbone wrappers registered in mmseg's ``MODELS``."""
