"""nlseg.deploy.onnx_export: ONNX export of every head: torch.onnx.export (dynamo), ONNX Runtime
(CPU) equals PyTorch eval mode within |ort - torch| <= 1e-4 + 1e-4 |torch|, at the export size
and at a second H, W (dynamic axes) for every head."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')
from nlseg.deploy import ATOL, RTOL, FeatureMapHead, export_onnx, max_abs_diff, \
    onnxruntime_session, run_onnxruntime, torch_eval, within_tolerance  # noqa: E402

from .heads import HEADS, NUM_CLASSES, SECOND_SIZE, SIZE, build_head, fcn_cfg, \
    feature_map  # noqa: E402


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """name -> (module, path of its ONNX file), exported once per head."""
    out = tmp_path_factory.mktemp('onnx')
    cache = {}

    def get(name):
        if name not in cache:
            module = build_head(name)
            path = export_onnx(module, feature_map(SIZE, 0), str(out / f'{name}.onnx'))
            cache[name] = module, path
        return cache[name]

    return get


@pytest.mark.parametrize('name', list(HEADS))
def test_head_exports_and_onnxruntime_equals_pytorch(exported, name):
    module, path = exported(name)
    session = onnxruntime_session(path, threads=1)
    for size, seed in ((SIZE, 1), (SECOND_SIZE, 2)):  # the second: dynamic H and W
        x = feature_map(size, seed)
        ref = torch_eval(module, x)
        out = run_onnxruntime(session, x)
        assert out.shape == ref.shape == (1, NUM_CLASSES, *size)
        assert np.isfinite(ref).all() and np.abs(ref).max() > 1e-3  # not a trivial output
        assert within_tolerance(out, ref), (name, size, max_abs_diff(out, ref), ATOL, RTOL)


def test_hamburger_exported_graph_is_deterministic(exported):
    """The eval bases are a constant of the graph: no random node, and two sessions (as two
    processes would) give bit-identical outputs on the same input."""
    import onnx

    for name in ('ham_nmf', 'ham_vq', 'ham_cd'):
        _, path = exported(name)
        ops = {node.op_type for node in onnx.load(path).graph.node}
        assert not {op for op in ops if op.startswith('Random')}, (name, ops)
        x = feature_map(SIZE, 3)
        first = run_onnxruntime(onnxruntime_session(path, threads=1), x)
        second = run_onnxruntime(onnxruntime_session(path, threads=1), x)
        np.testing.assert_array_equal(first, second)


def test_nltv_with_the_duality_gap_stop_refuses_to_export(tmp_path):
    """tol is data-dependent control flow: a clear error naming tol, not a tracer error."""
    import nlseg  # noqa: F401
    from mmseg.registry import MODELS

    head = MODELS.build(dict(type='NLTVHead', base_head=fcn_cfg(),
                             nltv=dict(k=4, test_iters=5, tol=1e-5)))
    with pytest.raises(Exception, match='tol=1e-05'):
        export_onnx(FeatureMapHead(head), feature_map(SIZE, 0), str(tmp_path / 'nltv.onnx'))


def test_eager_outputs_do_not_depend_on_the_export_paths():
    """The export-only paths (one-piece concatenation and kNN graph, the elimination solve of
    CD) are not taken in eager mode, and the eager result equals the dense reference."""
    from nlseg.ops.concat_affinity import concatenation_affinity, concatenation_attention
    from nlseg.ops.matrix_decomposition import ridge_coef

    assert not torch.onnx.is_in_onnx_export()
    g = torch.Generator().manual_seed(0)
    theta, phi, value = (torch.randn(2, 30, 4, generator=g, dtype=torch.float64)
                         for _ in range(3))
    w = torch.randn(1, 8, 1, 1, generator=g, dtype=torch.float64)
    torch.testing.assert_close(concatenation_attention(theta, phi, value, w, chunk_size=7),
                               concatenation_affinity(theta, phi, w) @ value)
    x = torch.rand(2, 6, 20, generator=g, dtype=torch.float64)
    d = torch.nn.functional.normalize(torch.rand(2, 6, 3, generator=g, dtype=torch.float64),
                                      dim=1)
    gram = d.transpose(1, 2) @ d + 0.1 * torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(ridge_coef(x, d, 0.1),
                               torch.linalg.solve(gram, d.transpose(1, 2) @ x).transpose(1, 2))
