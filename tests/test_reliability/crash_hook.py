"""A hook that kills its own process with SIGKILL right after a given iteration's checkpoint
was written: a real, uncatchable interruption for the resume tests (imported by the
training subprocess through the config's custom_imports)."""
import os
import signal

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class SimulatedCrashHook(Hook):
    priority = 'LOWEST'  # after CheckpointHook has saved this iteration

    def __init__(self, kill_after_iter: int) -> None:
        self.kill_after_iter = kill_after_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.kill_after_iter:
            os.kill(os.getpid(), signal.SIGKILL)
