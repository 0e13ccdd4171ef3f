"""Save the random number generators' state in checkpoints, so ``--resume`` continues the
random stream where the interrupted run left it.

mmengine seeds the generators once at start-up and does not store their state: a resumed
run replays the data loader (so data order and augmentation match) but draws different
dropout masks and Hamburger bases from then on, and ends at different weights than an
uninterrupted run. This hook stores torch's CPU (and every CUDA device's) generator state of
every process in ``checkpoint['rng_state']`` and restores it when the checkpoint is loaded
for resuming.
numpy's and Python's generators are not stored: mmengine's resume replays the data pipeline,
which is what draws from them, and restoring them as well would advance them twice.
"""
from __future__ import annotations

import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

_KEY = 'rng_state'


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store torch's generator states in every checkpoint; restore them on resume.

    Restoring only happens for checkpoints loaded by ``runner.resume`` (``--resume``): a
    checkpoint loaded with ``load_from`` for fine-tuning or testing leaves the generators as
    the run's seed set them. A checkpoint without the key (written without this hook) is
    resumed as mmengine does, with a log line saying the random stream restarts.
    """

    # before CheckpointHook (VERY_LOW) in after_train_iter/after_train_epoch, so the states
    # gathered there are the ones of the iteration being saved
    priority = 'LOW'

    def __init__(self) -> None:
        self._states: list[dict] | None = None

    @staticmethod
    def _local_state() -> dict:
        state = {'torch': torch.get_rng_state()}
        if torch.cuda.is_available():
            state['cuda'] = torch.cuda.get_rng_state_all()
        return state

    def _gather(self) -> None:
        # runner.save_checkpoint runs on rank 0 only, so with several processes the states
        # are gathered here, on every rank, where the hooks run on all of them
        if get_world_size() > 1:
            self._states = all_gather_object(self._local_state())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._gather()

    def after_train_epoch(self, runner) -> None:
        self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = [self._local_state()] if get_world_size() == 1 else self._states
        if states is None:  # saved before any training iteration
            return
        checkpoint[_KEY] = {'per_rank': states}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        states = (checkpoint.get(_KEY) or {}).get('per_rank')
        if not states:
            runner.logger.info('RNGStateHook: the checkpoint holds no generator state; the '
                               'resumed run draws a new random stream')
            return
        rank, world_size = get_rank(), get_world_size()
        if len(states) != world_size:
            runner.logger.warning(
                f'RNGStateHook: the checkpoint holds the generator states of {len(states)} '
                f'processes but this run has {world_size}; the random stream restarts')
            return
        state = states[rank]
        torch.set_rng_state(state['torch'])
        cuda_states = state.get('cuda')
        if cuda_states and torch.cuda.is_available():
            if len(cuda_states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda_states)
            else:
                runner.logger.warning(
                    f'RNGStateHook: the checkpoint holds {len(cuda_states)} CUDA generator '
                    f'states but {torch.cuda.device_count()} devices are visible; the CUDA '
                    'generators are not restored')
