"""RNGStateHook stores torch's generator state in a checkpoint and restores it on resume
only."""
import logging

import torch

from nlseg.engine import RNGStateHook


class _Runner:
    def __init__(self, resume: bool):
        self._resume = resume
        self.logger = logging.getLogger('test_rng_state_hook')


def test_resume_continues_the_random_stream():
    hook = RNGStateHook()
    torch.manual_seed(123)
    torch.rand(5)
    checkpoint = {}
    hook.before_save_checkpoint(_Runner(resume=False), checkpoint)
    expected = torch.rand(5)  # what the uninterrupted run draws next
    torch.manual_seed(999)  # a fresh process, seeded at start-up
    hook.after_load_checkpoint(_Runner(resume=True), checkpoint)
    assert torch.equal(torch.rand(5), expected)


def test_load_from_without_resume_leaves_the_generator_alone():
    hook = RNGStateHook()
    torch.manual_seed(1)
    checkpoint = {}
    hook.before_save_checkpoint(_Runner(resume=False), checkpoint)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    hook.after_load_checkpoint(_Runner(resume=False), checkpoint)
    assert torch.equal(torch.rand(3), expected)


def test_checkpoint_without_state_or_other_world_size_restarts_the_stream(caplog):
    hook = RNGStateHook()
    torch.manual_seed(7)
    expected = torch.rand(3)
    for checkpoint in ({}, {'rng_state': {'per_rank': [{'torch': torch.get_rng_state()}] * 2}}):
        torch.manual_seed(7)
        with caplog.at_level(logging.INFO, logger='test_rng_state_hook'):
            hook.after_load_checkpoint(_Runner(resume=True), checkpoint)
        assert torch.equal(torch.rand(3), expected)
    assert 'holds no generator state' in caplog.text
    assert 'holds the generator states of 2 processes but this run has 1' in caplog.text


def test_state_survives_a_weights_only_round_trip(tmp_path):
    import nlseg  # noqa: F401  (allowlists the checkpoint globals)
    hook = RNGStateHook()
    checkpoint = {'meta': {}}
    hook.before_save_checkpoint(_Runner(resume=False), checkpoint)
    torch.save(checkpoint, tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth')  # weights_only=True
    assert torch.equal(loaded['rng_state']['per_rank'][0]['torch'],
                       checkpoint['rng_state']['per_rank'][0]['torch'])
