"""Training-loop pieces registered in mmseg's registries: bf16 autocast training on any
device, generator state in checkpoints, a cross-process parameter check, and CPU
data-parallel training with synchronised batch norm over gloo."""
from .cpu_sync_batch_norm import CPUSyncBatchNorm, convert_to_cpu_sync_batch_norm
from .hooks import ParameterConsistencyHook, RNGStateHook, parameter_digests
from .model_wrapper import CPUDistributedDataParallel
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper', 'CPUDistributedDataParallel', 'CPUSyncBatchNorm',
           'ParameterConsistencyHook', 'RNGStateHook', 'convert_to_cpu_sync_batch_norm',
           'parameter_digests']
