"""NonLocalHead, ARNLHead, NSHead, SNLHead, GSNLHead: NLHead drop-in, training, bad input."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.models.decode_heads import NLHead
from mmseg.registry import MODELS

from nlseg.models import ARNLHead, GSNLHead, NonLocalHead, NSHead, SNLHead
from tests.helpers import encoder_decoder_cfg, random_batch

BN = dict(type='BN', requires_grad=True)
HEADS = {
    'NonLocalHead': dict(type='NonLocalHead'),
    'NonLocalHead_dot_product': dict(type='NonLocalHead', mode='dot_product'),
    'ARNLHead': dict(type='ARNLHead'),
    'NSHead': dict(type='NSHead', num_units=2),
    'SNLHead': dict(type='SNLHead'),
    'GSNLHead': dict(type='GSNLHead'),
}


def head_cfg(name, in_channels=16, channels=8, num_classes=3, **extra):
    return dict(HEADS[name], in_channels=in_channels, channels=channels,
                num_classes=num_classes, dropout_ratio=0.1, norm_cfg=BN,
                align_corners=False, **extra)


def randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                shift = 0.5 if name.endswith('running_var') else 0.0
                t.copy_(0.2 * torch.randn(t.shape, generator=g).abs() + shift)
    return module


def test_registered():
    for name, cls in [('NonLocalHead', NonLocalHead), ('ARNLHead', ARNLHead),
                      ('NSHead', NSHead), ('SNLHead', SNLHead), ('GSNLHead', GSNLHead)]:
        assert MODELS.get(name) is cls


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'gaussian', 'dot_product',
                                  'concatenation'])
def test_nlhead_state_dict_loads_into_nonlocalhead(mode):
    kwargs = dict(in_channels=16, channels=8, num_classes=3, norm_cfg=BN, mode=mode)
    ref = randomize(NLHead(**kwargs)).eval()
    ours = NonLocalHead(**kwargs).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.nl_block.impl == 'auto'  # resolved per forward from the measured table
    x = torch.randn(2, 16, 6, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours([x]), ref([x]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', list(HEADS))
def test_wrong_input_channels_named(name):
    head = MODELS.build(head_cfg(name))
    with pytest.raises(ValueError, match=r'expects an input with 16 channels.*\(2, 12, 5, 5\)'):
        head([torch.randn(2, 12, 5, 5)])


@pytest.mark.parametrize('name', list(HEADS))
def test_batch_one_1x1_map_eval(name):
    head = randomize(MODELS.build(head_cfg(name))).eval()
    with torch.no_grad():
        out = head([torch.randn(1, 16, 1, 1)])
    assert out.shape == (1, 3, 1, 1) and torch.isfinite(out).all()


@pytest.mark.parametrize('name', list(HEADS))
def test_dense_and_efficient_heads_agree(name):
    dense = randomize(MODELS.build(head_cfg(name, impl='dense'))).eval()
    efficient = MODELS.build(head_cfg(name, impl='efficient')).eval()
    efficient.load_state_dict(dense.state_dict())
    x = torch.randn(2, 16, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(efficient([x]), dense([x]), rtol=1e-5, atol=1e-5)


def test_head_arguments_reach_the_block():
    head = MODELS.build(head_cfg('ARNLHead', lambda_act='softplus', use_scale=True,
                                 reduction=4))
    assert head.nl_block.lambda_act == 'softplus' and head.nl_block.use_scale
    assert head.nl_block.inter_channels == 2
    assert MODELS.build(head_cfg('NSHead', num_units=3)).ns_stage.num_units == 3
    assert MODELS.build(head_cfg('GSNLHead', affinity='random_walk')).snl_block.generalized
    assert not MODELS.build(head_cfg('SNLHead')).snl_block.generalized
    with pytest.raises(ValueError, match='num_convs=2'):
        MODELS.build(head_cfg('SNLHead', num_convs=1))


def train_two_iterations(decode_head, size=32, num_classes=4):
    """Two SGD steps of a tiny EncoderDecoder (tests.helpers' config, with the mmseg scope
    and the preprocessor's pad size that ``train_iterations`` lacks); returns the losses."""
    from mmengine.optim import OptimWrapper

    init_default_scope('mmseg')
    cfg = encoder_decoder_cfg(decode_head)
    cfg['data_preprocessor']['size'] = (size, size)
    torch.manual_seed(0)
    model = MODELS.build(cfg).train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    block = model.decode_head.context_block
    before = {n: p.detach().clone() for n, p in block.named_parameters()}
    losses = [float(model.train_step(random_batch(size=size, num_classes=num_classes,
                                                  seed=i), optim)['loss']) for i in range(2)]
    changed = [n for n, p in block.named_parameters() if not torch.equal(p, before[n])]
    return losses, changed


@pytest.mark.parametrize('name', [
    name if name == 'NonLocalHead' else pytest.param(name, marks=pytest.mark.slow)
    for name in HEADS])
def test_trains_two_iterations_in_encoder_decoder(name):
    cfg = head_cfg(name, in_channels=512, channels=16, num_classes=4, in_index=3)
    losses, changed = train_two_iterations(cfg)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    # the zero-initialised output layer receives gradient and leaves zero: the block learns
    assert any('conv_out' in n or n.startswith(('norm', 'w2', 'units')) for n in changed)
