"""What the model converters share (nlseg/converters/state_dict.py): the exact 1x1 -> 3x3
kernel embedding, checkpoint files with their wrappers, refused and broken files."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from nlseg.converters import (ConversionError, convert_arnlb, embed_kernel, load_checkpoint,
                              save_checkpoint, split_state_dict)
from tests.test_converters.model_sources import feature


# ====================================================================== embed_kernel
def test_embed_kernel_is_exact():
    w = torch.randn(5, 4, 1, 1, dtype=torch.float64)
    x = feature(2, 4, 6, 7)
    torch.testing.assert_close(F.conv2d(x, embed_kernel(w), padding=1), F.conv2d(x, w),
                               rtol=0, atol=1e-12)
    with pytest.raises(ConversionError, match='1x1'):
        embed_kernel(torch.zeros(5, 4, 3, 3))


# ================================================================== files and wrappers
@pytest.mark.parametrize('wrapper', ['state_dict', 'model', None])
def test_save_and_split_keep_the_wrapper(tmp_path, wrapper):
    sd = OrderedDict(a=torch.arange(3.0))
    path = str(tmp_path / 'sub' / 'out.pth')
    save_checkpoint(path, sd, wrapper, meta=dict(classes=('x', 'y')) if wrapper else None)
    loaded = load_checkpoint(path)
    state_dict, found = split_state_dict(loaded)
    assert found == wrapper and torch.equal(state_dict['a'], sd['a'])
    if wrapper:
        assert loaded['meta'] == dict(classes=('x', 'y'))
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['out.pth']  # no temp left


def test_load_refuses_pickled_objects_and_bad_files(tmp_path):
    import argparse
    path = tmp_path / 'args.pth'
    torch.save({'model': {'w': torch.zeros(1)}, 'args': argparse.Namespace(lr=1)}, path)
    with pytest.raises(ConversionError, match=r'argparse\.Namespace.*--unsafe-load'):
        load_checkpoint(str(path))
    assert load_checkpoint(str(path), unsafe=True)['args'].lr == 1
    (tmp_path / 'cut.pth').write_bytes(path.read_bytes()[:40])
    with pytest.raises(ConversionError, match='truncated or corrupt'):
        load_checkpoint(str(tmp_path / 'cut.pth'))
    with pytest.raises(ConversionError, match='does not exist'):
        load_checkpoint(str(tmp_path / 'none.pth'))
    with pytest.raises(ConversionError, match="no 'state_dict' or 'model' entry"):
        split_state_dict({'epoch': 3, 'net': {}})
    with pytest.raises(TypeError, match='map str keys to tensors'):
        convert_arnlb({'meta': 3})

