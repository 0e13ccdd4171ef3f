"""ONNX export of nlseg heads and mmseg segmentors, and the check against PyTorch.

The exporter is torch's dynamo-based one (``torch.onnx.export(..., dynamo=True)``, the
default of torch 2.13): it traces the model with ``torch.export`` (symbolic H and W), so a
graph exported at one size runs at any other. The TorchScript exporter (``dynamo=False``)
cannot export the CPU flash attention of the non-local family and freezes the sizes that the
Python code reads from the input, so it is not used.

What nlseg changes under export (``torch.onnx.is_in_onnx_export()``; eager PyTorch is
untouched): concatenation attention is exported in one piece (no chunk loop), the kNN graph
of NLTV in one chunk, CD's ridge solve by Gauss-Jordan elimination (ONNX has no linear
solve), and NLTV refuses the data-dependent duality-gap stop (export with ``tol=None``).
Hamburger's eval-mode bases are a constant of the graph (drawn once from the seeded
generator), so the exported model is deterministic.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

__all__ = ['ATOL', 'RTOL', 'FeatureMapHead', 'SegmentorTensorForward', 'export_onnx',
           'onnxruntime_session', 'run_onnxruntime', 'max_abs_diff', 'within_tolerance',
           'torch_eval']

#: Agreement of ONNX Runtime (CPU, float32) with PyTorch eval mode that the tool and the
#: tests require: |ort - torch| <= ATOL + RTOL * |torch|, element-wise. Measured differences
#: are 1e-7 to 1e-5 for the heads at unit-scale inputs (docs/deployment.md).
ATOL = 1e-4
RTOL = 1e-4

INPUT_NAME = 'inputs'
OUTPUT_NAME = 'seg_logits'


class FeatureMapHead(nn.Module):
    """A decode head as a module of one feature map: ``head([x])`` (mmseg's heads take the
    list of backbone levels; the exported graph takes the one level they read)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head([x])


class SegmentorTensorForward(nn.Module):
    """``model(inputs, mode='tensor')`` of an mmseg segmentor (mmseg's deploy path): the
    backbone, neck and decode head on a normalised (B, 3, H, W) batch, returning the decode
    head's logits (B, K, H / s, W / s) before resizing and post-processing."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, mode='tensor')


def export_onnx(module: nn.Module, example: torch.Tensor, path: str, dynamic: bool = True,
                opset: Optional[int] = None) -> str:
    """Export ``module`` (put in eval mode) on one (B, C, H, W) ``example`` input to ``path``.

    Args:
        module: a module of one tensor (wrap heads in :class:`FeatureMapHead`, segmentors in
            :class:`SegmentorTensorForward`).
        example: the example input; its batch size is fixed in the graph.
        path: the .onnx file written (weights inside the file).
        dynamic: H and W are symbolic (any size runs); ``False`` fixes them to the example's.
        opset: ONNX opset version (None: the exporter's default).

    Returns:
        ``path``. Errors of the exporter propagate (e.g. NLTV with ``tol`` set).
    """
    module.eval()
    dynamic_shapes = None
    if dynamic:
        dim = torch.export.Dim
        dynamic_shapes = ({2: dim('height', min=2, max=4096), 3: dim('width', min=2, max=4096)},)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with torch.no_grad():
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=dynamic_shapes,
                                    opset_version=opset, external_data=False, verbose=False)
    program.save(path, external_data=False)
    return path


def onnxruntime_session(path: str, threads: Optional[int] = None):
    """An ONNX Runtime CPU session of ``path`` (``threads`` intra-op threads, None: ORT's)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_onnxruntime(session_or_path, x: torch.Tensor) -> np.ndarray:
    """The first output of the graph on ``x`` (float32 numpy array)."""
    session = (onnxruntime_session(session_or_path) if isinstance(session_or_path, str)
               else session_or_path)
    return session.run(None, {session.get_inputs()[0].name: x.detach().cpu().numpy()})[0]


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b|; inf when the shapes differ."""
    if a.shape != b.shape:
        return float('inf')
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0))


def within_tolerance(onnx_out: np.ndarray, torch_out: np.ndarray, atol: float = ATOL,
                     rtol: float = RTOL) -> bool:
    """|onnx - torch| <= atol + rtol |torch| everywhere (and the same shape)."""
    return onnx_out.shape == torch_out.shape and bool(
        np.all(np.abs(onnx_out - torch_out) <= atol + rtol * np.abs(torch_out)))


def torch_eval(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The PyTorch eval-mode output of ``module`` on ``x`` as a numpy array."""
    module.eval()
    with torch.no_grad():
        return module(x).detach().cpu().numpy()

