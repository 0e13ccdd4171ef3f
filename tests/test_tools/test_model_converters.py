"""The model converters' command lines (tools/model_converters/*2nlseg.py, thin scripts over
nlseg/converters/): each converts a saved whole-model checkpoint as documented, and a source
of another layout exits with 1 and one error line. The conversions themselves are tested in
tests/test_converters/."""
from __future__ import annotations

import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from mmseg.models.decode_heads import LightHamHead

from nlseg.models import ARNLHead, Hamburger, HamburgerHead
from tests.helpers import ROOT, tool_env
from tests.references.enjoy_hamburger import EnjoyHamburgerV1, SegMMHamHead
from tests.references.snl_iccv2021 import SNLAuthorsHead
from tests.test_converters.model_sources import (BN, HEAD_ARGS, SNL_ARGS, arnlb_reference,
                                                 ham_args, load_strict, randomize, snl_target)

CONVERTERS = osp.join(ROOT, 'tools', 'model_converters')


def _sources():
    """(script, source state_dict, target builder) for every converter."""
    return {
        'arnlb2nlseg.py': (lambda: arnlb_reference().state_dict(),
                           lambda: ARNLHead(**HEAD_ARGS)),
        'snl2nlseg.py': (lambda: randomize(SNLAuthorsHead(generalized=True, stage_num=2,
                                                          **SNL_ARGS)).state_dict(),
                         lambda: snl_target(generalized=True, stage_num=2)),
        'lightham2nlseg.py': (
            lambda: randomize(LightHamHead(**ham_args(in_channels=[8], in_index=[0])))
            .state_dict(),
            lambda: HamburgerHead(trailing_relu=True,
                                  **ham_args(in_channels=[8], in_index=[0]))),
        'seg_mm_hamhead2nlseg.py': (
            lambda: randomize(SegMMHamHead(**ham_args(in_channels=8))).state_dict(),
            lambda: HamburgerHead(trailing_relu=True, **ham_args(in_channels=8))),
        'hamburger_v1_2nlseg.py': (
            lambda: randomize(EnjoyHamburgerV1(10)).state_dict(),
            lambda: Hamburger(10, 16, norm_cfg=BN, trailing_relu=True,
                              ham_kwargs=dict(MD_R=4))),
    }


@pytest.mark.slow
@pytest.mark.parametrize('script', sorted(_sources()))
def test_cli_converts_a_saved_checkpoint(tmp_path, script):
    make_source, make_target = _sources()[script]
    head = make_source()
    source = OrderedDict([('backbone.stem.weight', torch.randn(2, 3, 1, 1))])
    source.update((f'decode_head.{k}', v) for k, v in head.items())
    src, dst = tmp_path / 'src.pth', tmp_path / 'out' / 'dst.pth'
    torch.save({'state_dict': source, 'meta': dict(iter=4), 'optimizer': {}}, src)
    run = subprocess.run([sys.executable, osp.join(CONVERTERS, script), str(src), str(dst)],
                         capture_output=True, text=True, env=tool_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    assert 'kept: backbone.* (1)' in run.stdout and 'optimizer' in run.stdout
    out = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(out) == {'state_dict', 'meta'} and out['meta'] == dict(iter=4)
    assert torch.equal(out['state_dict']['backbone.stem.weight'], source['backbone.stem.weight'])
    load_strict(make_target(), {k[len('decode_head.'):]: v
                                for k, v in out['state_dict'].items()
                                if k.startswith('decode_head.')})


@pytest.mark.slow
def test_cli_lightham_kernel_size_1(tmp_path):
    head = randomize(LightHamHead(**ham_args(in_channels=[8], in_index=[0]))).state_dict()
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'state_dict': head}, src)
    run = subprocess.run([sys.executable, osp.join(CONVERTERS, 'lightham2nlseg.py'), str(src),
                          str(dst), '--kernel-size', '1'], capture_output=True, text=True,
                         env=tool_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    out = torch.load(dst, map_location='cpu', weights_only=True)['state_dict']
    assert out['squeeze.conv.weight'].shape[2:] == (1, 1)
    load_strict(HamburgerHead(trailing_relu=True, kernel_size=1,
                              **ham_args(in_channels=[8], in_index=[0])), out)


@pytest.mark.slow
def test_cli_error_exit_status(tmp_path):
    """A source of another layout: exit status 1, one error line naming the missing keys,
    nothing written (the error path is shared by every script)."""
    src = tmp_path / 'src.pth'
    torch.save({'state_dict': {'backbone.stem.weight': torch.zeros(1)}}, src)
    run = subprocess.run([sys.executable, osp.join(CONVERTERS, 'arnlb2nlseg.py'), str(src),
                          str(tmp_path / 'bad.pth')], capture_output=True, text=True,
                         env=tool_env(), timeout=300)
    assert run.returncode == 1 and run.stderr.startswith('error: ')
    assert 'missing' in run.stderr and 'non_blocak.g.conv.weight' in run.stderr
    assert not (tmp_path / 'bad.pth').exists()
