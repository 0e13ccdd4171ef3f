"""``init_std``: the std of the normal init of the NL-family embeddings (g/theta/phi), set on
the blocks and passed through by every context head; mmcv's 0.01 stays the default."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import nlseg  # noqa: F401
from nlseg.models.blocks import NonLocalBlock
from nlseg.models.blocks.non_local_stage import NonLocalStage
from nlseg.models.blocks.spectral_non_local import SpectralNonLocalBlock

HEADS = ['NonLocalHead', 'ARNLHead', 'NSHead', 'SNLHead', 'GSNLHead']


def _embedding_weights(block):
    """The conv weights of the block's theta (and phi / g where present)."""
    weights = []
    for name in ('theta', 'phi', 'g'):
        m = getattr(block, name, None)
        if m is None:
            continue
        m = m[0] if isinstance(m, torch.nn.Sequential) else m
        weights.append((m.conv if hasattr(m, 'conv') else m).weight)
    return weights


@pytest.mark.parametrize('head', HEADS)
@pytest.mark.parametrize('std', [0.01, 0.3])
def test_head_passes_init_std_to_its_block(head, std):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    h = MODELS.build(dict(type=head, in_channels=64, channels=64, num_classes=3,
                          init_std=std))
    block = h.context_block
    assert block.init_std == std
    block.init_weights()  # mmengine's model.init_weights() calls it without arguments
    weights = _embedding_weights(block)
    assert weights
    for w in weights:
        assert float(w.std()) == pytest.approx(std, rel=0.15)


def test_default_is_mmcv_std():
    for block in (NonLocalBlock(16), NonLocalStage(16), SpectralNonLocalBlock(16)):
        assert block.init_std == 0.01


def test_explicit_std_argument_still_wins():
    block = NonLocalStage(64, init_std=0.3)
    torch.manual_seed(0)
    block.init_weights(std=0.02)
    assert float(block.theta.conv.weight.std()) == pytest.approx(0.02, rel=0.15)


@pytest.mark.parametrize('cls', [NonLocalStage, SpectralNonLocalBlock])
def test_bad_init_std_is_refused(cls):
    with pytest.raises(ValueError, match='init_std'):
        cls(16, init_std=-1.0)
    with pytest.raises(TypeError, match='init_std'):
        cls(16, init_std='big')
