"""Helpers shared by the blocks and heads of :mod:`nlseg.models` (argument/input checks)."""
from .input_checks import *  # noqa: F401,F403
