"""NLTVSoftmax block and NLTVHead over any decode head."""
import copy

import pytest
import torch

import nlseg  # noqa: F401  (registers NLTVHead)
from nlseg.models import NLTVSoftmax
from nlseg.ops import knn_graph, nltv_softmax
from tests.helpers import train_iterations


@pytest.fixture
def mmseg_scope():
    """EncoderDecoder configs name mmseg modules (SegDataPreProcessor) without a scope."""
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def fcn_cfg(**kw):
    cfg = dict(type='FCNHead', in_channels=512, in_index=3, channels=16, num_convs=1,
               concat_input=False, dropout_ratio=0.1, num_classes=4,
               norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
               loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    cfg.update(kw)
    return cfg


def nltv_head_cfg(nltv=None, **kw):
    return dict(type='NLTVHead', base_head=fcn_cfg(),
                nltv=dict(k=4, train_iters=2, test_iters=20) if nltv is None else nltv, **kw)


def build(cfg):
    from mmseg.registry import MODELS
    return MODELS.build(copy.deepcopy(cfg))


# ---------------------------------------------------------------- NLTVSoftmax block

def test_block_train_and_eval_iterations():
    torch.manual_seed(0)
    block = NLTVSoftmax(k=4, train_iters=2, test_iters=7, tol=None)
    logits, feats = torch.randn(2, 3, 6, 6), torch.randn(2, 5, 6, 6)
    index, weight = knn_graph(feats, k=4)
    out = block(logits, feats)
    assert torch.allclose(out, nltv_softmax(logits, index, weight, iters=2, tol=None))
    block.eval()
    assert torch.allclose(block(logits, feats),
                          nltv_softmax(logits, index, weight, iters=7, tol=None))
    assert torch.allclose(block(logits), nltv_softmax(logits, *knn_graph(logits, k=4), iters=7,
                                                      tol=None))


def test_block_learnable_graph_gets_gradients_both_modes():
    for grad in ('bptt', 'one_step'):
        block = NLTVSoftmax(k=3, lam=1.0, train_iters=3, grad=grad, learnable_graph=True,
                            sigma_b=0.5)
        logits = torch.randn(1, 3, 5, 5, requires_grad=True)
        feats = torch.rand(1, 2, 5, 5, requires_grad=True)
        out = block(logits, feats, log=True)
        (out * torch.randn_like(out)).sum().backward()
        assert logits.grad.abs().sum() > 0 and feats.grad.abs().sum() > 0
        for name, p in block.log_graph_params.items():
            assert p.grad is not None and torch.isfinite(p.grad) and p.grad != 0, (grad, name)


@pytest.mark.parametrize('kwargs,name', [
    (dict(k=0), 'k'), (dict(lam=-1.0), 'lam'), (dict(tau=0.0), 'tau'), (dict(eps=-0.5), 'eps'),
    (dict(grad='adjoint'), 'grad'), (dict(train_iters=-1), 'train_iters'),
    (dict(feature_norm='l1'), 'feature_norm'), (dict(sigma_b=0.0), 'sigma_b'),
    (dict(lambda2=0.0, learnable_graph=True), 'lambda2')])
def test_block_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        NLTVSoftmax(**kwargs)


def test_block_k_too_large_and_size_mismatch():
    block = NLTVSoftmax(k=16)
    with pytest.raises(ValueError, match='k must'):
        block(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='same batch and spatial size'):
        NLTVSoftmax(k=2)(torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 5))


# ---------------------------------------------------------------- NLTVHead

def test_head_mirrors_base_head_and_lam_zero_is_log_softmax():
    head = build(nltv_head_cfg(nltv=dict(k=4, lam=0.0, eps=0.5, train_iters=3)))
    base = head.base_head
    for name in ('num_classes', 'out_channels', 'align_corners', 'ignore_index', 'threshold',
                 'loss_decode', 'in_channels', 'in_index'):
        assert getattr(head, name) is getattr(base, name), name
    assert not any(n.startswith('conv_seg') for n, _ in head.named_parameters())
    inputs = [torch.randn(2, 512, 8, 8) for _ in range(4)]
    for mode in ('train', 'eval'):
        getattr(head, mode)()
        torch.manual_seed(0)
        out = head(inputs)
        torch.manual_seed(0)
        ref = torch.log_softmax(base(inputs) / 0.5, dim=1)
        assert out.shape == (2, 4, 8, 8)
        assert torch.allclose(out, ref, atol=1e-6), mode


def test_head_captures_feature_before_dropout():
    head = build(nltv_head_cfg())
    head.train()
    assert head.feature_module == 'dropout'
    before, got = {}, {}
    head.base_head.dropout.register_forward_pre_hook(lambda m, a: before.update(x=a[0]))
    block_forward = head.nltv.forward

    def spy(logits, feats=None, log=False):
        got['x'] = feats
        return block_forward(logits, feats, log)

    head.nltv.forward = spy
    head([torch.randn(1, 512, 6, 6) for _ in range(4)])
    assert got['x'] is before['x'] and got['x'].shape == (1, 16, 6, 6)


def test_head_regularises_and_outputs_log_probabilities():
    head = build(nltv_head_cfg(nltv=dict(k=4, lam=3.0, test_iters=30)))
    head.eval()
    with torch.no_grad():
        out = head([torch.randn(1, 512, 8, 8) for _ in range(4)])
    assert torch.allclose(out.exp().sum(1), torch.ones(1, 8, 8), atol=1e-5)


def test_head_graph_from_logits_and_binary():
    head = build(dict(type='NLTVHead', base_head=fcn_cfg(num_classes=2, out_channels=1,
                                                         threshold=0.4),
                      nltv=dict(k=3, lam=0.0, eps=1.0), graph_source='logits'))
    assert head.out_channels == 1 and head.threshold == 0.4
    head.eval()
    inputs = [torch.randn(1, 512, 5, 5) for _ in range(4)]
    out = head(inputs)
    assert out.shape == (1, 1, 5, 5)
    assert torch.allclose(out, head.base_head(inputs), atol=1e-5)  # lam = 0, eps = 1: sigmoid


def test_head_trains_in_encoder_decoder(mmseg_scope):
    losses = train_iterations(nltv_head_cfg(), iters=2, size=64)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_head_trains_one_step_learnable_graph(mmseg_scope):
    cfg = nltv_head_cfg(nltv=dict(k=4, train_iters=3, grad='one_step', learnable_graph=True))
    losses = train_iterations(cfg, iters=2, size=64)
    assert all(torch.isfinite(torch.tensor(losses)))


def test_head_predict_in_encoder_decoder(mmseg_scope):
    from mmengine.config import ConfigDict

    from tests.helpers import encoder_decoder_cfg, random_batch
    # ConfigDict: EncoderDecoder reads test_cfg.mode as an attribute
    model = build(ConfigDict(encoder_decoder_cfg(nltv_head_cfg(), size=32)))
    model.eval()
    batch = model.data_preprocessor(random_batch(num_images=1, size=32), False)
    with torch.no_grad():
        out = model.predict(batch['inputs'], batch['data_samples'])
    assert out[0].pred_sem_seg.data.shape == (1, 32, 32)
    assert out[0].seg_logits.data.shape == (4, 32, 32)


def test_head_bad_input():
    with pytest.raises(ValueError, match='graph_source'):
        build(nltv_head_cfg(graph_source='pixels'))
    with pytest.raises(ValueError, match='grad'):
        build(nltv_head_cfg(nltv=dict(grad='implicit')))
    with pytest.raises(ValueError, match='feature_module'):
        build(nltv_head_cfg(feature_module='nonexistent'))
    # a feature map whose size differs from the logits: error, or resize when asked
    head2 = build(nltv_head_cfg(feature_module='conv_seg'))
    head2.base_head.dropout.register_forward_hook(
        lambda m, a, out: torch.nn.functional.avg_pool2d(out, 2))
    head2.base_head.conv_seg.register_forward_hook(
        lambda m, a, out: torch.nn.functional.interpolate(out, scale_factor=2))
    head2.eval()
    inputs = [torch.randn(1, 512, 6, 6) for _ in range(4)]
    with pytest.raises(ValueError, match='differ in spatial size'):
        head2(inputs)
    head2.resize_features = True
    assert head2(inputs).shape == (1, 4, 6, 6)


# ---------------------------------------------------------------- the local TV (grid graph)

def test_block_grid_graph_is_the_solver_on_the_4_neighbour_grid():
    from nlseg.ops.grid_graph import grid_graph
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 7)
    block = NLTVSoftmax(graph='grid', train_iters=2, test_iters=15).eval()
    index, weight = grid_graph(2, 6, 7)
    expected = nltv_softmax(logits, index, weight, iters=15, tol=1e-5, check_every=10)
    assert torch.equal(block(logits), expected)
    assert torch.equal(block(logits, torch.randn(2, 5, 6, 7)), expected)  # features unused
    assert 'graph=' + repr('grid') in repr(block)


def test_head_grid_source_regularises_on_the_grid(mmseg_scope):
    head = build(nltv_head_cfg(nltv=dict(lam=3.0, test_iters=20), graph_source='grid'))
    assert head.nltv.graph == 'grid'
    head.eval()
    inputs = [torch.randn(1, 512, 8, 8) for _ in range(4)]
    with torch.no_grad():
        out = head(inputs)
        plain = torch.log_softmax(head.base_head(inputs) / 0.5, dim=1)
    assert torch.allclose(out.exp().sum(1), torch.ones(1, 8, 8), atol=1e-5)
    # smoother than the plain softmax: a smaller total variation of the probabilities
    def tv(p):
        return (p[..., 1:, :] - p[..., :-1, :]).abs().sum() + \
            (p[..., 1:] - p[..., :-1]).abs().sum()
    assert tv(out.exp()) < tv(plain.exp())
    losses = train_iterations(nltv_head_cfg(nltv=dict(train_iters=2), graph_source='grid'),
                              iters=2, size=64)
    assert all(torch.isfinite(torch.tensor(losses)))
