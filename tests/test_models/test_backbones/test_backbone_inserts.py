"""Blocks inside the backbone: nlseg's blocks as registered model types (mmseg ResNet
``plugins=``) and the ResNets with ``inserts`` at (stage, block index) positions."""
import csv
import subprocess
import sys

import pytest
import torch
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope
from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d
from mmseg.registry import MODELS

import nlseg  # noqa: F401
from nlseg.models import AdaptiveNonLocalBlock, Hamburger, NonLocalBlock, NonLocalStage, \
    SpectralNonLocalBlock
from nlseg.models.backbones import ResNetV1cWithInserts, ResNetV1dWithInserts, \
    ResNetWithInserts, StageWithInserts
from tests.helpers import ROOT, tool_env

# tiny ResNets: base/stem channels 8 (stage outputs 8..64 for depth 18, 32..256 for depth 50)
TINY = dict(base_channels=8, stem_channels=8)
NL = dict(type='NonLocalBlock', reduction=2)
OPEN_NL = dict(NL, zero_init_output=False)

BLOCK_CASES = [
    (NonLocalBlock, dict(reduction=2)),
    (AdaptiveNonLocalBlock, dict(reduction=2)),
    (NonLocalStage, dict(reduction=2, num_units=2)),
    (SpectralNonLocalBlock, dict(reduction=2, generalized=True)),
    (Hamburger, dict(ham_channels=8, ham_kwargs=dict(MD_R=4))),
]


def build(cfg: dict):
    torch.manual_seed(0)
    return MODELS.build(cfg)


@pytest.fixture
def no_default_scope(monkeypatch):
    """No DefaultScope instance: mmcv's build_plugin_layer then searches mmengine's root
    MODELS (an earlier test may have left an mmseg scope as the current instance)."""
    monkeypatch.setattr(DefaultScope, 'get_current_instance', classmethod(lambda cls: None))


# ------------------------------------------------------------------------- registration
@pytest.mark.parametrize('cls,kwargs', BLOCK_CASES, ids=lambda c: getattr(c, '__name__', ''))
def test_block_builds_by_name_in_both_registries(cls, kwargs):
    assert MODELS.module_dict[cls.__name__] is cls
    assert ROOT_MODELS.module_dict[cls.__name__] is cls
    x = torch.randn(2, 16, 5, 6)
    with DefaultScope.overwrite_default_scope('mmseg'):
        block = MODELS.build(dict(type=cls.__name__, in_channels=16, **kwargs))
    assert type(block) is cls and block.in_channels == 16
    assert block(x).shape == x.shape
    assert type(ROOT_MODELS.build(dict(type=cls.__name__, in_channels=16, **kwargs))) is cls


def test_nltv_softmax_is_not_a_plugin_block():
    assert 'NLTVSoftmax' not in MODELS.module_dict
    assert 'NLTVSoftmax' not in ROOT_MODELS.module_dict


def test_registration_is_idempotent():
    from nlseg.models.backbones.block_plugins import register_plugin_blocks
    register_plugin_blocks()  # a second run must neither raise nor re-register
    assert MODELS.module_dict['NonLocalBlock'] is NonLocalBlock


def _plugin_resnet(block: dict) -> dict:
    return dict(type='ResNet', depth=50, **TINY, plugins=[dict(
        cfg=block, stages=(False, True, True, False), position='after_conv3')])


@pytest.mark.parametrize('scope', ['mmseg', None])
def test_plugins_entry_in_mmseg_resnet(scope, request):
    if scope is None:
        request.getfixturevalue('no_default_scope')
        model = build(_plugin_resnet(OPEN_NL))
    else:
        with DefaultScope.overwrite_default_scope(scope):
            model = build(_plugin_resnet(OPEN_NL))
    # one block after conv3 of every bottleneck of res3 (4) and res4 (6), none elsewhere
    names = [n for n, m in model.named_modules() if isinstance(m, NonLocalBlock)]
    assert names == [f'layer2.{i}.non_local_block' for i in range(4)] + [
        f'layer3.{i}.non_local_block' for i in range(6)]
    assert model.layer2[0].non_local_block.in_channels == 16 * 4  # planes * expansion
    assert model.layer3[5].non_local_block.in_channels == 32 * 4
    calls = []
    for name in names:
        model.get_submodule(name).register_forward_hook(lambda *a, n=name: calls.append(n))
    model.eval()
    outs = model(torch.randn(1, 3, 32, 32))
    assert calls == names
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]


@pytest.mark.parametrize('block', [
    dict(type='SpectralNonLocalBlock', reduction=2), dict(type='NonLocalStage', num_units=2),
    dict(type='Hamburger', ham_channels=16, ham_kwargs=dict(MD_R=4))])
def test_plugins_entry_other_blocks(block, no_default_scope):
    model = build(_plugin_resnet(block))
    model.train()
    outs = model(torch.randn(2, 3, 32, 32))
    sum(o.mean() for o in outs).backward()
    cls = MODELS.get(block['type'])
    assert sum(isinstance(m, cls) for m in model.modules()) == 10


# ------------------------------------------------------------------ inserts: structure
def test_backbone_types_registered_and_subclass_the_mmseg_resnets():
    for name, base in [('ResNetWithInserts', ResNet), ('ResNetV1cWithInserts', ResNetV1c),
                       ('ResNetV1dWithInserts', ResNetV1d)]:
        model = build(dict(type=name, depth=18, **TINY,
                           inserts=[dict(stage=1, before=-1, block=NL)]))
        assert isinstance(model, base) and type(model).__name__ == name
    v1d = build(dict(type='ResNetV1dWithInserts', depth=18, **TINY))
    assert isinstance(v1d, ResNetV1dWithInserts)
    assert v1d.deep_stem and v1d.avg_down  # ResNetV1d's settings are kept
    assert list(v1d.inserted_blocks()) == [] and v1d.inserts == []


def test_positions_names_and_channels_in_forward_order():
    inserts = [dict(stage=3, before=1, block=NL),
               dict(stage=0, before=0, block=NL),
               dict(stage=1, before=-1, block=dict(type='NonLocal2d', reduction=2)),
               dict(stage=0, block=NL)]  # no 'before': after the last block
    model = build(dict(type='ResNetWithInserts', depth=18, **TINY, inserts=inserts))
    expected = ['layer1.insert_before_0', 'layer1.0', 'layer1.1', 'layer1.insert_after_1',
                'layer2.0', 'layer2.insert_before_1', 'layer2.1', 'layer3.0', 'layer3.1',
                'layer4.0', 'layer4.insert_before_1', 'layer4.1']
    inputs, outputs, order = {}, {}, []

    def record(name):
        def hook(module, args, output):
            order.append(name)
            inputs[name], outputs[name] = args[0], output
        return hook

    for name in expected:
        model.get_submodule(name).register_forward_hook(record(name))
    model.eval()
    model(torch.randn(1, 3, 32, 32))
    assert order == expected
    # each module reads exactly what the one before it in its stage wrote
    for prev, cur in zip(expected, expected[1:]):
        if prev.split('.')[0] == cur.split('.')[0]:
            assert inputs[cur] is outputs[prev]
    blocks = model.inserted_blocks()
    assert list(blocks) == ['layer1.insert_before_0', 'layer1.insert_after_1',
                            'layer2.insert_before_1', 'layer4.insert_before_1']
    assert [b.in_channels for b in blocks.values()] == [8, 8, 16, 64]
    assert type(blocks['layer2.insert_before_1']).__name__ == 'NonLocal2d'
    assert [(s['stage'], s['before'], s['name']) for s in model.inserts] == [
        (0, 0, 'insert_before_0'), (0, 2, 'insert_after_1'), (1, 1, 'insert_before_1'),
        (3, 1, 'insert_before_1')]
    assert isinstance(model.layer1, StageWithInserts)
    assert not isinstance(model.layer3, StageWithInserts)  # untouched stages stay as they are


def test_nl_paper_placement_resnet50():
    nl = dict(type='NonLocalBlock', reduction=2)
    model = build(dict(type='ResNetV1cWithInserts', depth=50, **TINY, inserts=[
        dict(stage=1, before=2, block=nl), dict(stage=1, before=None, block=nl),
        dict(stage=2, before=2, block=nl), dict(stage=2, before=4, block=nl),
        dict(stage=2, before=None, block=nl)]))
    assert list(model.inserted_blocks()) == [
        'layer2.insert_before_2', 'layer2.insert_after_3', 'layer3.insert_before_2',
        'layer3.insert_before_4', 'layer3.insert_after_5']
    assert list(model.layer3._modules) == ['0', '1', 'insert_before_2', '2', '3',
                                           'insert_before_4', '4', '5', 'insert_after_5']


# ------------------------------------------------------- inserts: checkpoints and outputs
def _plain_and_inserted(block: dict, depth: int = 50):
    common = dict(depth=depth, **TINY, dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                  contract_dilation=True)
    plain = build(dict(type='ResNetV1c', **common))
    inserted = build(dict(type='ResNetV1cWithInserts', **common, inserts=[
        dict(stage=1, before=None, block=block), dict(stage=2, before=-1, block=block)]))
    return plain, inserted


def test_plain_state_dict_loads_strictly_on_the_resnet_part():
    plain, inserted = _plain_and_inserted(NL)
    insert_keys = {k for k in inserted.state_dict() if '.insert_' in k}
    assert insert_keys and all(k.startswith(('layer2.insert_after_3.', 'layer3.insert_before_5.'))
                               for k in insert_keys)
    assert set(inserted.state_dict()) - insert_keys == set(plain.state_dict())
    assert 'layer3.5.conv1.weight' in inserted.state_dict()
    result = inserted.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == [] and set(result.missing_keys) == insert_keys
    for key, value in plain.state_dict().items():
        assert torch.equal(inserted.state_dict()[key], value), key


def test_identity_insert_gives_the_plain_output_exactly_and_an_open_one_does_not():
    x = torch.randn(2, 3, 32, 32)
    plain, shut = _plain_and_inserted(NL)  # zero_init_output=True: identity at start
    shut.load_state_dict(plain.state_dict(), strict=False)
    _, opened = _plain_and_inserted(OPEN_NL)
    opened.load_state_dict(plain.state_dict(), strict=False)
    for mode in ('eval', 'train'):
        for m in (plain, shut, opened):
            getattr(m, mode)()
        with torch.no_grad():
            ref, same, other = plain(x), shut(x), opened(x)
        assert all(torch.equal(a, b) for a, b in zip(ref, same)), mode
        assert torch.equal(ref[0], other[0])  # res2 comes before the first insert (res3)
        for a, b in zip(ref[1:], other[1:]):
            assert not torch.allclose(a, b, atol=1e-4), mode


def test_pretrained_resnet_checkpoint_loads_and_init_weights_keeps_insert_init(tmp_path):
    plain, _ = _plain_and_inserted(NL)
    path = tmp_path / 'resnet.pth'
    torch.save(plain.state_dict(), path)
    common = dict(depth=50, **TINY, dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                  contract_dilation=True)
    inserts = [dict(stage=2, before=-1, block=NL)]
    loaded = build(dict(type='ResNetV1cWithInserts', **common, inserts=inserts,
                        pretrained=str(path)))
    loaded.init_weights()
    for key, value in plain.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(1, 3, 32, 32)
    loaded.eval()
    plain.eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(plain(x), loaded(x)))
    # without pretrained the ResNet's Kaiming/constant initialisers run over every module;
    # the inserted block's own init_weights then restores its init (zero output, std 0.01)
    scratch = build(dict(type='ResNetV1cWithInserts', **common, inserts=inserts))
    scratch.init_weights()
    block = scratch.layer3.insert_before_5
    assert torch.count_nonzero(block.conv_out.conv.weight) == 0
    assert block.theta.conv.weight.std() < 0.02  # normal(0.01), not Kaiming (~0.18)
    feats = torch.randn(1, block.in_channels, 4, 4)
    assert torch.equal(block(feats), feats)


# ------------------------------------------------------------------ inserts: bad input
@pytest.mark.parametrize('inserts,error,match', [
    ('stage=2', TypeError, r'inserts must be a list of dicts'),
    ([1], TypeError, r'inserts\[0\] must be a dict'),
    ([dict(stage=0, block=NL, where=1)], ValueError, r"inserts\[0\] has unknown keys \['where'\]"),
    ([dict(before=0, block=NL)], ValueError, r"inserts\[0\] needs the key 'stage'"),
    ([dict(stage=0)], ValueError, r"inserts\[0\] needs the key 'block'"),
    ([dict(stage=-1, block=NL)], ValueError, r'inserts\[0\]\.stage must be an integer >= 0'),
    ([dict(stage='1', block=NL)], TypeError, r'inserts\[0\]\.stage must be an integer'),
    ([dict(stage=4, block=NL)], ValueError,
     r'inserts\[0\]\.stage must be in \[0, 3\] .* 4 stages, got 4'),
    ([dict(stage=0, before=2, block=NL)], ValueError,
     r'inserts\[0\]\.before must be None \(after the last block\) or in \[-2, 1\] for stage 0 '
     r'\(layer1, 2 residual blocks\), got 2'),
    ([dict(stage=1, before=-3, block=NL)], ValueError, r'in \[-2, 1\] .* got -3'),
    ([dict(stage=1, before=1.0, block=NL)], TypeError, r'inserts\[0\]\.before must be an integer'),
    ([dict(stage=1, before=-1, block=NL), dict(stage=1, before=1, block=NL)], ValueError,
     r'inserts\[1\] and inserts\[0\] insert two blocks at the same position'),
    ([dict(stage=1, block=NL), dict(stage=1, before=None, block=OPEN_NL)], ValueError,
     r'same position'),
    ([dict(stage=1, block=dict(reduction=2))], TypeError, r"inserts\[0\]\.block must be a "
     r"config dict with a 'type'"),
    ([dict(stage=1, block=dict(NL, in_channels=32))], ValueError,
     r'in_channels=32, but stage 1 outputs 16 channels'),
])
def test_bad_inserts_raise_naming_the_entry(inserts, error, match):
    with pytest.raises(error, match=match):
        ResNetWithInserts(depth=18, **TINY, inserts=inserts)


def test_stage_range_follows_num_stages():
    with pytest.raises(ValueError, match=r'stage must be in \[0, 1\]'):
        ResNetWithInserts(depth=18, **TINY, num_stages=2, out_indices=(0, 1),
                          strides=(1, 2), dilations=(1, 1),
                          inserts=[dict(stage=2, block=NL)])


# -------------------------------------------------- inserts: frozen stages, norm_eval, cp
def test_frozen_stages_freeze_their_inserted_blocks_and_norm_eval_their_bns():
    bn_nl = dict(OPEN_NL, norm_cfg=dict(type='BN'))
    model = ResNetV1cWithInserts(depth=18, **TINY, frozen_stages=2, inserts=[
        dict(stage=1, before=-1, block=bn_nl), dict(stage=2, before=-1, block=bn_nl)])
    frozen, trained = model.layer2.insert_before_1, model.layer3.insert_before_1
    assert not any(p.requires_grad for p in frozen.parameters())  # from construction on
    model.train()
    assert not frozen.training and not frozen.conv_out.norm.training
    assert all(p.requires_grad for p in trained.parameters()) and trained.training
    assert trained.conv_out.norm.training
    outs = model(torch.randn(2, 3, 32, 32))
    sum(o.square().mean() for o in outs).backward()
    assert all(p.grad is None for p in frozen.parameters())
    assert all(p.grad is not None for p in trained.parameters())

    norm_eval = ResNetWithInserts(depth=18, **TINY, norm_eval=True, inserts=[
        dict(stage=2, block=bn_nl)])
    norm_eval.train()
    block = norm_eval.layer3.insert_after_1
    assert block.training and not block.conv_out.norm.training
    mean = block.conv_out.norm.running_mean.clone()
    norm_eval(torch.randn(2, 3, 32, 32))
    assert torch.equal(block.conv_out.norm.running_mean, mean)


def test_with_cp_checkpoints_inserted_blocks_with_equal_gradients():
    results = {}
    for with_cp in (False, True):
        model = build(dict(type='ResNetWithInserts', depth=18, **TINY, with_cp=with_cp,
                           inserts=[dict(stage=1, before=-1, block=OPEN_NL)]))
        calls = []
        # a pre-hook: the recomputation stops early, after the last tensor it needs
        model.layer2.insert_before_1.register_forward_pre_hook(lambda *a: calls.append(1))
        model.train()
        x = torch.randn(2, 3, 32, 32)
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results[with_cp] = ([o.detach() for o in outs], len(calls),
                            {n: p.grad.clone() for n, p in model.named_parameters()})
    (out0, calls0, grads0), (out1, calls1, grads1) = results[False], results[True]
    assert calls0 == 1 and calls1 == 2  # recomputed in the backward pass
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(out0, out1))
    for name, grad in grads0.items():  # equal up to float32 rounding of the recomputation
        assert (grad - grads1[name]).abs().max() <= 1e-4 * grad.abs().max() + 1e-7, name


# ---------------------------------------------------------------------------- benchmark
@pytest.mark.slow
def test_benchmark_script_tiny(tmp_path):
    cmd = [sys.executable, 'tools/analysis/benchmark_backbone_inserts.py', '--depth', '18',
           '--size', '64', '--repeats', '1', '--only', 'plain', 'nlseg_res2', 'mmcv_res3',
           '--out-dir', str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=tool_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / 'benchmark.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['case'] for r in rows] == ['plain', 'nlseg_res2', 'mmcv_res3']
    assert [r['positions'] for r in rows] == ['0', '256', '64']  # 64 / 4 = 16, 64 / 8 = 8
    for row in rows:
        assert not row['error'] and float(row['train_s']) > 0
    assert float(rows[0]['extra_mem_mb']) == 0.0
    assert float(rows[1]['params_m']) > float(rows[0]['params_m'])
    assert '| nlseg_res2 | NonLocalBlock | 0 | 256 |' in (tmp_path / 'benchmark.md').read_text()
