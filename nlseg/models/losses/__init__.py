from .class_weighted_cross_entropy import *  # noqa: F401,F403
