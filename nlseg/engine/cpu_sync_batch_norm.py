"""Synchronised batch normalisation that works on CPU process groups (gloo).

torch's ``SyncBatchNorm`` (what ``norm_cfg=dict(type='SyncBN')`` builds) refuses CPU tensors
as soon as a process group exists ("SyncBatchNorm expected input tensor to be on GPU"), so
every SyncBN config fails under ``tools/dist_train.sh`` on a CPU machine.
:class:`CPUSyncBatchNorm` computes the same statistics over the whole global batch with two
differentiable all-reduces (sum, then the sum of squared deviations from the global mean),
so outputs, gradients and running statistics equal those of one ``BatchNorm`` over the
concatenated batch of all processes (Ioffe & Szegedy 2015, Alg. 1, over the global batch).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Synchronised batch norm whose synchronisation runs on any backend (gloo on CPU).

    Same parameters, buffers and state_dict keys as ``nn.SyncBatchNorm``; in eval mode, or
    without an initialised process group of more than one process, it is plain batch norm.
    Not a subclass of ``nn.SyncBatchNorm``: DDP refuses those in CPU modules.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f'CPUSyncBatchNorm: input must have at least 2 dims (N, C, ...), '
                             f'got shape {tuple(input.shape)}')

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        group = self.process_group or (dist.group.WORLD if dist.is_initialized() else None)
        if not self.training or group is None or dist.get_world_size(group) == 1:
            return super().forward(input)  # plain batch norm
        self._check_input_dim(input)
        channels = input.size(1)
        dims = [0] + list(range(2, input.dim()))
        stat_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
        x = input.to(stat_dtype)
        local_count = torch.tensor([input.numel() / channels], dtype=stat_dtype,
                                   device=input.device)
        sums = all_reduce(torch.cat([x.sum(dims), local_count]), group=group)
        count = sums[-1]
        mean = sums[:channels] / count
        shape = [1, channels] + [1] * (input.dim() - 2)
        centred = x - mean.view(shape)
        var = all_reduce(centred.pow(2).sum(dims), group=group) / count  # biased
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count.detach())
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor,
                              count: torch.Tensor) -> None:
        # as _BatchNorm.forward: momentum None means a cumulative moving average
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = var * count / (count - 1).clamp(min=1)
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype),
                                               alpha=factor)


def convert_to_cpu_sync_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` in ``module`` by a :class:`CPUSyncBatchNorm` with
    the same parameters and buffers (shared, not copied). Returns the (possibly new) module."""
    if isinstance(module, nn.SyncBatchNorm):
        converted = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum,
                                     module.affine, module.track_running_stats,
                                     module.process_group)
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        new_child = convert_to_cpu_sync_batch_norm(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module
