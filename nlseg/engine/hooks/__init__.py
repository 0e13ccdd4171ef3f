from .parameter_consistency_hook import ParameterConsistencyHook, parameter_digests
from .rng_state_hook import RNGStateHook

__all__ = ['ParameterConsistencyHook', 'RNGStateHook', 'parameter_digests']
