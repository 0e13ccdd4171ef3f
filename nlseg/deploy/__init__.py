"""Deployment: ONNX export of nlseg heads and mmseg segmentors, and the check of the exported
graph against PyTorch (ONNX Runtime, CPU). ``tools/deployment/pytorch2onnx.py`` is the
command line over it."""
from .onnx_export import (ATOL, RTOL, FeatureMapHead, SegmentorTensorForward, export_onnx,
                          max_abs_diff, onnxruntime_session, run_onnxruntime, torch_eval,
                          within_tolerance)
from .segmentor import build_segmentor, default_shape, export_and_check

__all__ = ['ATOL', 'RTOL', 'FeatureMapHead', 'SegmentorTensorForward', 'export_onnx',
           'onnxruntime_session', 'run_onnxruntime', 'max_abs_diff', 'within_tolerance',
           'torch_eval', 'build_segmentor', 'default_shape', 'export_and_check']
