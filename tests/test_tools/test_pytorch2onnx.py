"""tools/deployment/pytorch2onnx.py end to end: a tiny config and a checkpoint saved from a
pretrained=None model, exported, checked against PyTorch, exit status by the tolerance."""
from __future__ import annotations

import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.helpers import ROOT, tool_env

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')
pytestmark = pytest.mark.slow  # a fresh process importing mmseg and exporting a segmentor

TOOL = osp.join(ROOT, 'tools', 'deployment', 'pytorch2onnx.py')


def _config(decode_head: str) -> str:
    """A ResNetV1c-18 with 8 stem/base channels (64 channels at the last stage) and
    ``decode_head`` (Python source of a dict) over it."""
    return textwrap.dedent(f'''\
        custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
        default_scope = 'mmseg'
        norm_cfg = dict(type='BN', requires_grad=True)
        crop_size = (32, 40)
        model = dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                                   std=[1., 1., 1.], size=crop_size),
            backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                          num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                          strides=(1, 2, 1, 1), norm_cfg=norm_cfg, contract_dilation=True,
                          pretrained=None),
            decode_head={decode_head},
            train_cfg=dict(),
            test_cfg=dict(mode='whole'))
        ''')


NL_HEAD = ("dict(type='NonLocalHead', in_channels=64, in_index=3, channels=16, "
           "num_classes=3, mode='embedded_gaussian', zero_init_output=False, "
           "norm_cfg=norm_cfg, align_corners=False)")
NLTV_HEAD = ("dict(type='NLTVHead', base_head=dict(type='FCNHead', in_channels=64, in_index=3, "
             "channels=16, num_convs=1, num_classes=3, norm_cfg=norm_cfg, "
             "align_corners=False), nltv=dict(k=4, test_iters=5))")


def _write(tmp_path, decode_head: str) -> tuple[str, str]:
    """The config file and a checkpoint of the model it builds (random init, seed 0)."""
    import nlseg  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    config = tmp_path / 'tiny.py'
    config.write_text(_config(decode_head))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(config)).model)
    for m in model.modules():  # non-trivial BN statistics, saved in the checkpoint
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    checkpoint = tmp_path / 'tiny.pth'
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, str(checkpoint))
    return str(config), str(checkpoint)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT, env=tool_env(),
                          capture_output=True, text=True, timeout=900)


def test_pytorch2onnx_exports_a_segmentor_with_dynamic_shapes(tmp_path):
    config, checkpoint = _write(tmp_path, NL_HEAD)
    out = tmp_path / 'model.onnx'
    proc = _run(config, checkpoint, '--output-file', str(out), '--dynamic')
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert out.is_file() and out.stat().st_size > 100_000
    lines = [line for line in proc.stdout.splitlines() if 'max abs diff' in line]
    assert len(lines) == 2 and all(line.endswith('OK') for line in lines), proc.stdout
    assert 'input 1x3x32x40' in lines[0]  # the config's crop_size
    assert 'opset 20' in proc.stdout  # the exporter's default
    # the file runs in a plain ONNX Runtime session at another size: (1, 3, 24, 56) -> the
    # decode head's logits at output stride 8
    import onnxruntime as ort
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    x = torch.randn(1, 3, 24, 56).numpy()
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (1, 3, 3, 7)


def test_pytorch2onnx_exit_status_follows_the_tolerance(tmp_path):
    """Zero tolerance: float32 ONNX Runtime is not bit-equal to PyTorch, exit status 1."""
    config, checkpoint = _write(tmp_path, NL_HEAD)
    proc = _run(config, checkpoint, '--output-file', str(tmp_path / 'm.onnx'), '--shape', '16',
                '16', '--atol', '0', '--rtol', '0')
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert 'FAILED' in proc.stdout


def test_pytorch2onnx_nltv_needs_a_fixed_iteration_count(tmp_path):
    config, checkpoint = _write(tmp_path, NLTV_HEAD)
    out = tmp_path / 'nltv.onnx'
    proc = _run(config, checkpoint, '--output-file', str(out), '--shape', '32', '32')
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert 'tol=1e-05' in proc.stderr and not out.exists()
    proc = _run(config, checkpoint, '--output-file', str(out), '--shape', '32', '32',
                '--opset', '18', '--cfg-options', 'model.decode_head.nltv.tol=None')
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert out.is_file() and 'opset 18' in proc.stdout
