"""The data-parallel wrapper nlseg's tools use for distributed training on CPU (gloo)."""
from __future__ import annotations

from mmengine.model import MMDistributedDataParallel
# mmengine's root registry: the Runner looks wrapper types up with MODEL_WRAPPERS.get, which
# (unlike build) does not search the default scope's child registry
from mmengine.registry import MODEL_WRAPPERS

from .cpu_sync_batch_norm import convert_to_cpu_sync_batch_norm


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU processes: ``device_ids=None`` (what DDP needs for
    CPU modules) and every ``SyncBN`` layer replaced by
    :class:`~nlseg.engine.cpu_sync_batch_norm.CPUSyncBatchNorm`, which synchronises the
    batch statistics over gloo where torch's SyncBatchNorm refuses CPU tensors."""

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        if device_ids is not None:
            raise ValueError(f'CPUDistributedDataParallel: device_ids must be None for CPU '
                             f'modules, got {device_ids!r}')
        super().__init__(module=convert_to_cpu_sync_batch_norm(module), device_ids=None,
                         **kwargs)
