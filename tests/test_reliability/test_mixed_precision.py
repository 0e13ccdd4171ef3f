"""Mixed precision: every head trains 20 iterations on the demo data in bfloat16 on CPU
(``AutocastOptimWrapper``) with a finite loss, and every block gives finite outputs and
gradients under bf16 autocast for inputs scaled by 100."""
import math
import os.path as osp

import pytest
import torch

import nlseg  # noqa: F401
from nlseg.models.blocks import (CD2D, VQ2D, AdaptiveNonLocalBlock, Hamburger, NLTVSoftmax,
                                 NMF2D, NonLocalBlock, NonLocalStage, SpectralNonLocalBlock)
from tests.helpers import demo_cfg_options, make_tiny_demo_data, nlseg_demo_configs

ITERS = 20
# the key-task demo configs, one per head (the regions task has its own tests)
DEMO_CONFIGS = nlseg_demo_configs()


def _slug(path: str) -> str:
    return osp.basename(path).split('_r18')[0]


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('bf16') / 'data'))


def _runner(config: str, data_root: str, work_dir: str):
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner

    cfg = Config.fromfile(config)
    options = demo_cfg_options(data_root, ITERS, ITERS) + [
        'optim_wrapper.type=AutocastOptimWrapper', 'optim_wrapper.dtype=bfloat16']
    action, namespace = DictAction(option_strings=[], dest='x'), type('NS', (), {})()
    action(None, namespace, options)
    cfg.merge_from_dict(namespace.x)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'bf16_{_slug(config)}'
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=10 * ITERS, save_last=False)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS, val_interval=10 * ITERS)
    return Runner.from_cfg(cfg)


def test_every_head_has_a_demo_config():
    assert {_slug(c) for c in DEMO_CONFIGS} == {
        'fcn', 'nl', 'arnl', 'ns', 'snl', 'gsnl', 'ham-nmf', 'ham-vq', 'ham-cd', 'nltv-fcn'}


@pytest.mark.slow
@pytest.mark.parametrize('config', DEMO_CONFIGS, ids=_slug)
def test_head_trains_in_bfloat16_on_cpu(tmp_path, data_root, config):
    runner = _runner(config, data_root, str(tmp_path / 'work'))
    dtypes = []
    classifiers = [m for name, m in runner.model.decode_head.named_modules()
                   if name.endswith('conv_seg')]
    assert classifiers
    for module in classifiers:  # the head's classifier sees the head's features
        module.register_forward_pre_hook(
            lambda module, args: dtypes.append(args[0].dtype) if module.training else None)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == ITERS
    assert all(math.isfinite(v) for v in losses), losses
    # the head really ran on bfloat16 features, and the weights stayed float32
    assert len(dtypes) == ITERS and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())


def _blocks():
    """One small instance of every block, with the input it takes."""
    nl = [pytest.param(lambda m=m: NonLocalBlock(16, reduction=2, mode=m), 16, id=f'nl-{m}')
          for m in ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation')]
    return nl + [
        pytest.param(lambda: AdaptiveNonLocalBlock(16, reduction=2), 16, id='arnl'),
        pytest.param(lambda: NonLocalStage(16, reduction=2), 16, id='ns'),
        pytest.param(lambda: SpectralNonLocalBlock(16, reduction=2), 16, id='snl'),
        pytest.param(lambda: SpectralNonLocalBlock(16, reduction=2, generalized=True), 16,
                     id='gsnl'),
        pytest.param(lambda: NMF2D(16, MD_R=4), 16, id='nmf'),
        pytest.param(lambda: VQ2D(16, MD_R=4), 16, id='vq'),
        pytest.param(lambda: CD2D(16, MD_R=4), 16, id='cd'),
        pytest.param(lambda: Hamburger(16, ham_channels=16, ham_kwargs=dict(MD_R=4)), 16,
                     id='hamburger'),
    ]


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('build, channels', _blocks())
def test_block_is_finite_under_bf16_autocast_with_large_inputs(build, channels, train):
    _check_block_under_autocast(build, channels, train, torch.bfloat16, input_scale=100)


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('build, channels', _blocks())
def test_block_is_finite_under_fp16_autocast_with_large_inputs(build, channels, train):
    """float16 autocast on the CPU, a stand-in for ``--amp`` on a GPU (same casting policy
    for convs and matmuls). Outputs must stay finite for inputs x100: that needs the float32
    islands of docs/reliability.md (ARNL's attention, the NL/NS output projection).
    Gradients are checked at unit scale: at x100 float16 gradients overflow without the
    loss scaler that ``--amp`` adds."""
    _check_block_under_autocast(build, channels, train, torch.float16, input_scale=100,
                                check_grad=False)
    if train:
        _check_block_under_autocast(build, channels, train, torch.float16, input_scale=1)


def _check_block_under_autocast(build, channels, train, dtype, input_scale,
                                check_grad=True):
    torch.manual_seed(0)
    block = build()
    for p in block.parameters():  # leave no identity-at-init block
        torch.nn.init.normal_(p, std=0.5)
    block.train(train)
    x = (torch.randn(2, channels, 9, 11) * input_scale).requires_grad_(True)
    with torch.autocast('cpu', dtype=dtype):
        out = block(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    if train and check_grad:
        out.float().square().mean().backward()
        assert torch.isfinite(x.grad).all()
        for name, p in block.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize('with_feats', [False, True], ids=['logits-graph', 'feature-graph'])
def test_nltv_softmax_is_finite_under_bf16_autocast_with_large_inputs(with_feats):
    torch.manual_seed(0)
    logits = (torch.randn(2, 4, 12, 12) * 100).requires_grad_(True)
    feats = torch.randn(2, 8, 12, 12) * 100 if with_feats else None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        probs = NLTVSoftmax(k=5, train_iters=3)(logits, feats)
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs.float().sum(1), torch.ones(2, 12, 12), atol=1e-3,
                               rtol=0)
    (probs.float() * torch.randn(probs.shape)).sum().backward()
    assert torch.isfinite(logits.grad).all()
