"""``zero_init_output``: True (default, mmcv's) gates the context path shut at init (the
block is the identity and theta/phi/g get no gradient); False opens it (ConvModule's init),
and mmengine's ``init_weights`` pass keeps each choice."""
import pytest
import torch

import nlseg  # noqa: F401
from nlseg.models.blocks import (AdaptiveNonLocalBlock, NonLocalBlock, NonLocalStage,
                                 SpectralNonLocalBlock)

BN = dict(type='BN')
BLOCKS = [
    pytest.param(NonLocalBlock, {}, id='nl'),
    pytest.param(NonLocalBlock, dict(mode='dot_product'), id='nl-dot'),
    pytest.param(AdaptiveNonLocalBlock, {}, id='arnl'),
    pytest.param(NonLocalStage, {}, id='ns'),
    pytest.param(SpectralNonLocalBlock, {}, id='snl'),
    pytest.param(SpectralNonLocalBlock, dict(generalized=True), id='gsnl'),
]


def _context_grads(block, x):
    """Gradient norms of the context path's input projections (theta/phi/g)."""
    block(x).square().sum().backward()
    def is_input_projection(name):
        parts = name.split('.')
        return parts[0] in ('theta', 'phi', 'g') or (parts[0] == 'units' and parts[2] == 'g')
    return {n: p.grad.abs().sum().item() for n, p in block.named_parameters()
            if is_input_projection(n) and n.endswith('weight')}


@pytest.mark.parametrize('norm_cfg', [None, BN], ids=['no-norm', 'BN'])
@pytest.mark.parametrize('cls, extra', BLOCKS)
def test_zero_init_gates_the_context_path_shut(cls, extra, norm_cfg):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 6)
    shut = cls(8, norm_cfg=norm_cfg, **extra)
    shut.init_weights()  # what mmengine's Runner calls again
    assert torch.equal(shut.eval()(x), x)
    grads = _context_grads(shut.train(), x)
    assert grads and all(g == 0 for g in grads.values()), grads


@pytest.mark.parametrize('norm_cfg', [None, BN], ids=['no-norm', 'BN'])
@pytest.mark.parametrize('cls, extra', BLOCKS)
def test_open_init_passes_context_and_gradient(cls, extra, norm_cfg):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 6)
    block = cls(8, norm_cfg=norm_cfg, zero_init_output=False, **extra)
    block.init_weights()
    assert not torch.allclose(block.eval()(x), x)
    grads = _context_grads(block.train(), x)
    assert grads and all(g > 0 for g in grads.values()), grads
    if norm_cfg is not None:
        norms = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in norms)


@pytest.mark.parametrize('head_type', ['NonLocalHead', 'ARNLHead', 'NSHead', 'SNLHead',
                                       'GSNLHead'])
def test_heads_pass_the_switch_through_mmengine_init(head_type):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    for zero in (True, False):
        head = MODELS.build(dict(type=head_type, in_channels=8, channels=8, num_classes=3,
                                 norm_cfg=BN, zero_init_output=zero))
        head.init_weights()  # the Runner's pass over every submodule's init_weights
        block = head.context_block
        assert block.zero_init_output is zero
        weights = [m.weight for name, m in block.named_modules()
                   if isinstance(m, torch.nn.BatchNorm2d)]
        expected = 0.0 if zero else 1.0
        assert weights and all(torch.all(w == expected) for w in weights), head_type
