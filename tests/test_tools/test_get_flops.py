"""tools/analysis/get_flops.py and nlseg.utils.complexity: FLOPs and parameters of demo
configs, with mmengine's count and the completed count (fused attention, linalg_solve)."""
import os
import os.path as osp
import subprocess
import sys

import torch

from tests.helpers import ROOT

NL_CONFIG = 'configs/demo/nl_r18s3-d8_450iter_synthetic-context-64x64.py'


def _get_flops(config, shape=(32, 32), **cfg_options):
    from nlseg.analysis.flops import get_flops
    return get_flops(osp.join(ROOT, config), shape, cfg_options or None)


def test_cli_prints_input_shape_flops_and_params():
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, 'tools/analysis/get_flops.py', NL_CONFIG,
                           '--shape', '32', '48'], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert 'Input shape: (1, 3, 32, 48)' in out
    assert 'Params: ' in out
    assert "FLOPs (mmengine count, MACs): " in out
    assert 'FLOPs (completed count, MACs): ' in out
    assert 'scaled_dot_product_attention' in out  # what the completion added


def test_completed_count_adds_the_fused_attention_exactly():
    """The efficient NL forms no N x N matrix, so mmengine misses its two attention products;
    the completed count equals mmengine's count of the dense path, which uses bare matmuls."""
    efficient = _get_flops(NL_CONFIG, **{'model.decode_head.impl': 'efficient'})
    dense = _get_flops(NL_CONFIG, **{'model.decode_head.impl': 'dense'})
    # feature map 4x4 (N = 16), C' = 32: softmax(Q K^T) V is 16 * 16 * (32 + 32) MACs
    assert efficient['flops_added'] == {'scaled_dot_product_attention': 16 * 16 * 64}
    assert efficient['flops'] == efficient['flops_mmengine'] + 16 * 16 * 64
    assert efficient['flops'] == dense['flops_mmengine'] == dense['flops']
    assert efficient['params'] == dense['params'] > 0
    assert efficient['params_str'].endswith('K')
    # the fused op is uncounted by mmengine and counted by the completion
    assert any('FlashAttention' in op or 'scaled_dot_product' in op
               for op in efficient['uncounted_ops_mmengine'])
    assert not any('FlashAttention' in op or 'scaled_dot_product' in op
                   for op in efficient['uncounted_ops'])


def test_linalg_solve_and_broadcast_matmul_handles():
    from nlseg.utils.complexity import complexity_info

    class Solve(torch.nn.Module):
        def forward(self, a, b):
            return torch.linalg.solve(a, b)

    a = torch.eye(4).expand(3, 4, 4) + 0.1 * torch.ones(3, 4, 4)
    info = complexity_info(Solve(), (a, torch.ones(3, 4, 5)))
    assert info['flops_mmengine'] == 0
    assert info['flops'] == 3 * (4 ** 3 // 3 + 5 * 4 * 4)
    assert complexity_info(Solve(), (a, torch.ones(3, 4, 5)),
                           count_all_matmuls=False)['flops'] == 0

    class BroadcastMatmul(torch.nn.Module):
        def forward(self, a, b):
            return torch.matmul(a, b)

    info = complexity_info(BroadcastMatmul(), (torch.ones(2, 3), torch.ones(5, 3, 4)))
    assert info['flops_mmengine'] == 2 * 3 * 4  # mmengine misses the batch of 5
    assert info['flops'] == 5 * 2 * 3 * 4


def test_decode_head_called_with_a_list():
    """The benchmark's call convention: a BaseDecodeHead takes ([x],)."""
    import nlseg  # noqa: F401
    from mmseg.registry import MODELS

    from nlseg.utils.complexity import complexity_info
    head = MODELS.build(dict(type='NonLocalHead', in_channels=8, channels=8, num_classes=2))
    info = complexity_info(head.eval(), ([torch.randn(1, 8, 6, 6)], ))
    assert info['flops_added']['scaled_dot_product_attention'] == 36 * 36 * (4 + 4)
    assert info['flops'] > info['flops_mmengine'] > 0


def test_hamburger_cd_counts_its_ridge_solve():
    info = _get_flops('configs/demo/ham-cd_r18s3-d8_450iter_synthetic-context-64x64.py')
    assert info['flops_added'].get('linalg_solve', 0) > 0
    assert info['flops'] > info['flops_mmengine'] > 0
