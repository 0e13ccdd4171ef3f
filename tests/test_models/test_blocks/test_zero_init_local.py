"""``zero_init_local``: SNL / gSNL start as the NL block (w1, and w3 of gSNL, zero at init),
keep learning their local terms, and refuse the combination with a zero output norm."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import nlseg  # noqa: F401
from nlseg.models.blocks.spectral_non_local import SpectralNonLocalBlock


@pytest.mark.parametrize('generalized', [False, True])
@pytest.mark.parametrize('stage_num', [1, 2])
def test_local_terms_start_at_zero_and_learn(generalized, stage_num):
    torch.manual_seed(0)
    block = SpectralNonLocalBlock(16, generalized=generalized, zero_init_output=False,
                                  stage_num=stage_num, zero_init_local=True,
                                  norm_cfg=dict(type='BN'))
    block.init_weights()  # mmengine calls it again without arguments: still zero
    for unit in block.stage_units:
        local = [unit.w1] + ([unit.w3] if generalized else [])
        for m in local:
            assert torch.count_nonzero(m.weight) == 0
            assert m.bias is None or torch.count_nonzero(m.bias) == 0
        assert torch.count_nonzero(unit.w2.weight) > 0  # the A Z W2 term is drawn as usual
    x = torch.randn(2, 16, 5, 6)
    block(x).square().sum().backward()
    for unit in block.stage_units:  # the local terms get gradient: they are learned
        assert unit.w1.weight.grad.abs().sum() > 0


def test_at_init_the_block_is_the_block_without_its_local_terms():
    """With w1 = 0 the SNL output is X + norm(w2 A Z): the same as zeroing w1 by hand in the
    default init, and different from the default init (w1 drawn)."""
    torch.manual_seed(1)
    a = SpectralNonLocalBlock(8, zero_init_output=False, zero_init_local=True,
                              norm_cfg=dict(type='BN')).eval()
    b = SpectralNonLocalBlock(8, zero_init_output=False, norm_cfg=dict(type='BN')).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(a(x), b(x))
    torch.manual_seed(2)
    b.w1.reset_parameters()
    assert not torch.allclose(a(x), b(x))


def test_needs_an_open_output_norm():
    with pytest.raises(ValueError, match='zero_init_local'):
        SpectralNonLocalBlock(8, zero_init_local=True)  # zero_init_output defaults to True
    with pytest.raises(TypeError, match='zero_init_local'):
        SpectralNonLocalBlock(8, zero_init_output=False, zero_init_local='yes')


@pytest.mark.parametrize('head', ['SNLHead', 'GSNLHead'])
def test_heads_pass_it_to_their_block(head):
    init_default_scope('mmseg')
    h = MODELS.build(dict(type=head, in_channels=16, channels=16, num_classes=3,
                          zero_init_output=False, zero_init_local=True))
    assert h.snl_block.zero_init_local
    assert torch.count_nonzero(h.snl_block.w1.weight) == 0
