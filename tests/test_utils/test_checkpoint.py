"""mmengine checkpoints load under torch's default weights_only=True once nlseg is imported;
any other pickled global is still refused."""
import collections
import pickle

import numpy as np
import pytest
import torch

import nlseg  # noqa: F401  (allowlists the globals)
from nlseg.utils import mmengine_checkpoint_globals


def _mmengine_like_checkpoint():
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('nlseg-test-checkpoint')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', np.float64(0.25))
    hub.update_info('iter', 7)
    buffer = HistoryBuffer()
    buffer.update(1.5)
    return {
        'meta': {'iter': 7, 'seed': 0, 'dataset_meta': {'classes': ('a', 'b')},
                 'np_value': np.array([1, 2], dtype=np.int64),
                 'np_scalar': np.float32(3.0)},
        'state_dict': collections.OrderedDict(w=torch.ones(2)),
        'message_hub': hub.state_dict(),
        'extra_buffer': buffer,
    }


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    loaded = torch.load(path)  # torch's default: weights_only=True
    assert loaded['meta']['iter'] == 7
    assert loaded['meta']['np_value'].tolist() == [1, 2]
    assert float(loaded['meta']['np_scalar']) == 3.0
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
    log_scalars = loaded['message_hub']['log_scalars']
    assert log_scalars['train/loss'].current() == 0.25


def test_real_runner_checkpoint_has_only_allowlisted_globals(tmp_path):
    """Every global that torch finds unsafe in a real Runner checkpoint is allowlisted."""
    from tests.helpers import write_runner_checkpoint
    path = write_runner_checkpoint(tmp_path)
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    finally:
        torch.serialization.add_safe_globals(saved)
    allowed = set()
    for entry in mmengine_checkpoint_globals():
        if isinstance(entry, tuple):
            allowed.add(entry[1])
        else:
            allowed.add(f'{entry.__module__}.{entry.__qualname__}')
    assert unsafe, 'a Runner checkpoint pickles non-tensor globals'
    assert set(unsafe) <= allowed
    torch.load(path)  # and it loads with weights_only=True

    # mmseg's own API loads it too (through mmengine's load_checkpoint -> torch.load)
    from mmseg.apis import init_model

    from tests.helpers import DEMO_FCN_CONFIG, ROOT
    model = init_model(f'{ROOT}/{DEMO_FCN_CONFIG}', path, device='cpu')
    state = torch.load(path)['state_dict']
    name = 'decode_head.conv_seg.weight'
    assert torch.equal(model.state_dict()[name], state[name])


class Foreign:
    def __reduce__(self):
        return (print, ('pwned',))


def test_foreign_global_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': Foreign()}, path)
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(path)


class GetattrExploit:
    """Pickles as getattr(numpy.ndarray, 'tofile'): reachable if builtins.getattr were
    allowlisted as such."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_getattr_is_restricted_to_history_buffer_methods(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = tmp_path / 'getattr.pth'
    torch.save({'payload': GetattrExploit()}, path)
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer statistics'):
        torch.load(path)
    ok = tmp_path / 'ok.pth'
    torch.save({'m': HistoryBuffer.mean}, ok)
    assert torch.load(ok)['m'] == HistoryBuffer.mean


def test_allowlist_does_not_include_arbitrary_builtins():
    entries = mmengine_checkpoint_globals()
    assert getattr not in entries and eval not in entries
    names = {e[1] if isinstance(e, tuple) else f'{e.__module__}.{e.__qualname__}'
             for e in entries}
    assert not any(n.startswith(('os.', 'subprocess.', 'posix.')) for n in names)
    assert {n for n in names if n.startswith('builtins.')} == {'builtins.getattr'}
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
