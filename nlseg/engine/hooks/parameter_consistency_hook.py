"""Check that distributed training kept every process's parameters identical."""
from __future__ import annotations

import hashlib

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn


def parameter_digests(model: nn.Module) -> dict[str, str]:
    """SHA-256 of every parameter's bytes (float32/bfloat16/... exactly as stored), by name."""
    digests = {}
    for name, param in model.named_parameters():
        data = param.detach().to('cpu').contiguous()
        digests[name] = hashlib.sha256(data.view(torch.uint8).numpy().tobytes()).hexdigest()
    return digests


@HOOKS.register_module()
class ParameterConsistencyHook(Hook):
    """After training (and every ``interval`` iterations if ``interval > 0``), compare every
    process's parameters bit for bit and raise if any differ.

    Data-parallel training keeps the replicas identical only if every process applies the same
    averaged gradients; a layer that escapes DDP's reduction (an unused parameter, a custom
    backward, a buffer update feeding a parameter) makes them drift silently. Buffers (BN
    running statistics) are not compared: without SyncBN each process keeps its own.

    Args:
        interval: also check every ``interval`` training iterations (0: only at the end).
    """

    priority = 'LOW'

    def __init__(self, interval: int = 0) -> None:
        if not isinstance(interval, int) or interval < 0:
            raise ValueError(f'ParameterConsistencyHook: interval must be an int >= 0, got '
                             f'{interval!r}')
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval):
            self.check(runner)

    def after_train(self, runner) -> None:
        self.check(runner)

    def check(self, runner) -> None:
        """Raise RuntimeError naming the parameters that differ between processes."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        all_digests = all_gather_object(parameter_digests(model))
        differing = sorted(name for name in all_digests[0]
                           if len({digests.get(name) for digests in all_digests}) > 1)
        if differing:
            raise RuntimeError(
                f'ParameterConsistencyHook: after iteration {runner.iter} the parameters differ '
                f'between the {get_world_size()} processes: {differing[:10]}'
                f'{" ..." if len(differing) > 10 else ""}')
        runner.logger.info(
            f'ParameterConsistencyHook: {len(all_digests[0])} parameters identical on all '
            f'{get_world_size()} processes after iteration {runner.iter} (rank {get_rank()})')
