"""Helpers of the decode heads (their input list and the arguments mmseg leaves unchecked).
The argument and tensor checks every layer uses are in :mod:`nlseg.validation`."""
from .head_inputs import *  # noqa: F401,F403
