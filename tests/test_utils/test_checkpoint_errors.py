"""A truncated or foreign checkpoint is refused through mmengine's loader with a message
that says what is wrong and what to do; weights_only stays on."""
import os

import pytest
import torch

import nlseg  # noqa: F401  (installs the loader)
from nlseg.utils.checkpoint import CheckpointLoadError


def _load(path):
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(str(path), map_location='cpu')


@pytest.fixture
def good(tmp_path):
    path = tmp_path / 'iter_2.pth'
    torch.save({'state_dict': {'w': torch.arange(2000.0)}, 'meta': {'iter': 2}}, path)
    return path


def test_good_checkpoint_loads(good):
    assert _load(good)['meta']['iter'] == 2


@pytest.mark.parametrize('keep', [0, 10, 0.5, -30], ids=['empty', 'header', 'half', 'tail'])
def test_truncated_checkpoint_is_explained(tmp_path, good, keep):
    data = good.read_bytes()
    n = keep if isinstance(keep, int) and keep >= 0 else (
        int(len(data) * keep) if isinstance(keep, float) else len(data) + keep)
    broken = tmp_path / 'iter_4.pth'
    broken.write_bytes(data[:n])
    with pytest.raises(CheckpointLoadError) as info:
        _load(broken)
    message = str(info.value)
    assert f'checkpoint {broken} could not be read ({n} bytes)' in message
    assert 'truncated or corrupt' in message
    assert 'iter_2.pth' in message  # points to the checkpoint that is still good


def test_foreign_global_is_refused_and_named(tmp_path):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {'hook': os.system}}, evil)
    with pytest.raises(CheckpointLoadError, match=r'holds the pickled global (posix|nt)\.system'):
        _load(evil)


def test_real_getattr_stays_refused(tmp_path):
    """weights_only stays on: the allowlist does not open a way to arbitrary attributes."""
    import numpy as np
    path = tmp_path / 'getattr.pth'

    class _Evil:
        def __reduce__(self):
            return getattr, (np.ndarray, 'tofile')

    torch.save({'meta': {'x': _Evil()}}, path)
    with pytest.raises(CheckpointLoadError, match='was refused'):
        _load(path)


def test_missing_file_keeps_mmengine_behaviour(tmp_path):
    with pytest.raises(FileNotFoundError, match='can not be found'):
        _load(tmp_path / 'nope.pth')
