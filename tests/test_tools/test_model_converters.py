"""The model converters (tools/model_converters/): for each source, a state_dict with the
source's key layout converts, loads strictly into the nlseg module and gives the source
module's output (float64, eval mode); missing and unknown keys are named; the scripts work
from the command line.

The sources that are not installed (the ARNLB authors' ARNLHead, the SNL authors' head,
Enjoy-Hamburger's HamburgerV1 and seg_mm HamHead) are re-implemented below, minimally, with
their key layouts and forwards (the blocks of the ARNLB and SNL authors are the references
of tests/test_models/test_non_local_api.py and test_snl_ns_variants.py); mmseg's
LightHamHead is the installed one.
"""
from __future__ import annotations

import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads import LightHamHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.models.decode_heads.ham_head import NMF2D as MMSegNMF2D
from mmseg.models.decode_heads.ham_head import Hamburger as MMSegHamburger

from nlseg.models import CD2D, VQ2D, ARNLHead, GSNLHead, Hamburger, HamburgerHead, SNLHead
from tests.helpers import tool_env
from tests.test_models.test_non_local_api import AuthorsStyleARNL
from tests.test_models.test_snl_ns_variants import AuthorsSNLStage, AuthorsSNLUnit

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTERS = osp.join(ROOT, 'tools', 'model_converters')
sys.path.insert(0, CONVERTERS)

from arnlb2nlseg import convert_arnlb  # noqa: E402
from hamburger_v1_2nlseg import convert_hamburger_v1  # noqa: E402
from lightham2nlseg import convert_lightham  # noqa: E402
from seg_mm_hamhead2nlseg import convert_seg_mm_hamhead  # noqa: E402
from snl2nlseg import convert_snl  # noqa: E402
from state_dict_conversion import (ConversionError, ConversionReport, embed_kernel,  # noqa: E402
                                   load_checkpoint, save_checkpoint, split_state_dict)

BN = dict(type='BN', requires_grad=True)
EVAL_SEED = 0  # nlseg's default eval_seed of the hams


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every floating parameter and buffer random (running variances positive), so that a
    key mapped to the wrong place changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var'):
                    t.copy_(0.5 + torch.rand(t.shape, generator=g, dtype=t.dtype))
                else:
                    t.copy_(0.3 * torch.randn(t.shape, generator=g, dtype=t.dtype))
    return module


def feature(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def load_strict(target: nn.Module, state_dict) -> nn.Module:
    result = target.load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return target


def assert_same_output(reference: nn.Module, target: nn.Module, inputs) -> None:
    reference, target = reference.double().eval(), target.double().eval()
    with torch.no_grad():
        expected, actual = reference(inputs), target(inputs)
    assert expected.abs().max() > 1e-3  # not a trivially zero output
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10)


# =============================================================== ARNLB authors' ARNLHead
class AuthorsNLStyleHead(FCNHead):
    """mmseg NLHead's forward (which both authors' heads copy) with the context block under
    the attribute ``self.block_name``."""

    block_name = 'nl_block'

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        output = self.convs[1](getattr(self, self.block_name)(self.convs[0](x)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)


class ARNLBHead(AuthorsNLStyleHead):
    """The ARNLB authors' ``ARNLHead``: NLHead's structure with their ``NewNonLocal2d``
    under the misspelt ``self.non_blocak``. The block is ``AuthorsStyleARNL`` (mmcv's
    NonLocal2d plus the 3x3 lambda conv, written with phi as mmcv lays it out: the authors'
    permute, a crash bug, left out; no ``.cuda()``)."""

    block_name = 'non_blocak'

    def __init__(self, reduction=2, use_scale=False, mode='embedded_gaussian',
                 temperature=0.05, **kwargs):
        super().__init__(num_convs=2, **kwargs)
        self.temperature = temperature  # unused, as in the authors' code
        self.non_blocak = AuthorsStyleARNL(self.channels, reduction=reduction,
                                           use_scale=use_scale, conv_cfg=self.conv_cfg,
                                           norm_cfg=self.norm_cfg, mode=mode)


HEAD_ARGS = dict(in_channels=16, channels=8, num_classes=3, norm_cfg=BN, dropout_ratio=0.1)


def arnlb_reference(mode='embedded_gaussian', seed=0):
    return randomize(ARNLBHead(mode=mode, **HEAD_ARGS), seed)


def renamed(state_dict, old, new):
    return OrderedDict((k.replace(old, new), v) for k, v in state_dict.items())


@pytest.mark.parametrize('mode,lambda_name', [('embedded_gaussian', 'lambda_x'),
                                              ('embedded_gaussian', 'conv_lambda'),
                                              ('gaussian', 'lambda_x')])
def test_arnlb_converts_loads_strictly_and_matches(mode, lambda_name):
    reference = arnlb_reference(mode)
    # the lambda conv's name is not recorded: the converter finds it by its shape
    source = renamed(reference.state_dict(), '.lambda_x.', f'.{lambda_name}.')
    assert 'non_blocak.g.conv.weight' in source
    report = ConversionReport()
    converted = convert_arnlb(source, report=report)
    target = load_strict(ARNLHead(mode=mode, **HEAD_ARGS), converted)
    assert_same_output(reference, target, [feature(2, 16, 5, 6)])
    assert dict(report.renamed)[f'non_blocak.{lambda_name}.weight'] == 'nl_block.lambda_x.weight'
    assert not report.kept and not report.dropped and not report.filled
    assert (mode == 'gaussian') == any("mode='gaussian'" in n for n in report.notes)


def test_arnlb_lambda_without_bias_gets_zero_bias():
    reference = arnlb_reference()
    reference.non_blocak.lambda_x = nn.Conv2d(8, 1, 3, padding=1, bias=False)
    randomize(reference, seed=3)
    report = ConversionReport()
    converted = convert_arnlb(reference.state_dict(), report=report)
    assert torch.equal(converted['nl_block.lambda_x.bias'], torch.zeros(1))
    assert [k for k, _ in report.filled] == ['nl_block.lambda_x.bias']
    assert_same_output(reference, load_strict(ARNLHead(**HEAD_ARGS), converted),
                       [feature(1, 16, 4, 4)])


def test_arnlb_whole_model_keeps_other_keys():
    head = arnlb_reference().state_dict()
    source = OrderedDict([('backbone.conv1.weight', torch.randn(4, 3, 3, 3)),
                          ('auxiliary_head.conv_seg.weight', torch.randn(3, 4, 1, 1))])
    source.update((f'decode_head.{k}', v) for k, v in head.items())
    report = ConversionReport()
    converted = convert_arnlb(source, report=report)
    assert report.kept == ['backbone.conv1.weight', 'auxiliary_head.conv_seg.weight']
    assert converted['backbone.conv1.weight'] is source['backbone.conv1.weight']
    assert report.kept_groups() == {'backbone': 1, 'auxiliary_head': 1}
    head_part = {k[len('decode_head.'):]: v for k, v in converted.items()
                 if k.startswith('decode_head.')}
    load_strict(ARNLHead(**HEAD_ARGS), head_part)
    assert 'kept: backbone.* (1), auxiliary_head.* (1)' in report.summary()


def test_arnlb_missing_and_unknown_keys_are_named():
    source = arnlb_reference().state_dict()
    del source['non_blocak.theta.conv.weight'], source['conv_seg.weight']
    with pytest.raises(ConversionError, match=r'missing 2 key\(s\).*'
                       r'conv_seg\.weight.*non_blocak\.theta\.conv\.weight'):
        convert_arnlb(source)
    with pytest.raises(ConversionError, match=r'non_blocak\.g\.conv\.weight'):
        convert_arnlb({'backbone.conv1.weight': torch.zeros(1)})
    source = arnlb_reference().state_dict()
    source['non_blocak.extra.weight'] = torch.zeros(2, 2)
    with pytest.raises(ConversionError, match=r'non_blocak\.extra\.weight.*--drop-unknown'):
        convert_arnlb(source)
    report = ConversionReport()
    converted = convert_arnlb(source, report=report, drop_unknown=True)
    assert report.dropped == ['non_blocak.extra.weight']
    load_strict(ARNLHead(**HEAD_ARGS), converted)


def test_arnlb_ambiguous_or_absent_lambda_conv():
    source = arnlb_reference().state_dict()
    source['non_blocak.other.weight'] = torch.zeros(1, 8, 3, 3)
    with pytest.raises(ConversionError, match='ambiguous'):
        convert_arnlb(source)
    del source['non_blocak.other.weight'], source['non_blocak.lambda_x.weight']
    with pytest.raises(ConversionError, match=r'lambda conv.*\(1, 8, 3, 3\)'):
        convert_arnlb(source)


# ================================================================= SNL authors' SNL head
class SegmentationSNLUnit(AuthorsSNLUnit):
    """SNL-MMSeg's unit: the classification unit (``AuthorsSNLUnit``) with the W2 term
    subtracted, the sign of the authors' segmentation file."""

    def forward(self, x, att):
        g = self.g(x)
        b, c, h, w = g.shape
        ag = torch.bmm(att, g.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        out = self.w_1(g) - self.w_2(ag)
        if self.generalized:
            out = out + self.w_3(2 * ag - g)
        return x + torch.relu(self.bn(out))


class SNLAuthorsHead(AuthorsNLStyleHead):
    """The SNL authors' segmentation head: NLHead's structure with their stage
    (``AuthorsSNLStage``: t, p, ``layers`` of units) between convs[0] and convs[1]; the
    attribute name of the stage is a parameter (not recorded here)."""

    def __init__(self, reduction=2, stage_num=1, generalized=False, w2_sign='minus',
                 block_name='snl_block', **kwargs):
        super().__init__(num_convs=2, **kwargs)
        self.block_name = block_name
        c, ci = self.channels, self.channels // reduction
        stage = AuthorsSNLStage(c, ci, stage_num, generalized)
        if w2_sign == 'minus':
            stage.layers = nn.ModuleList(SegmentationSNLUnit(c, ci, generalized)
                                         for _ in range(stage_num))
        setattr(self, block_name, stage)


SNL_ARGS = dict(HEAD_ARGS, concat_input=False)


def snl_target(generalized=False, stage_num=1):
    return (GSNLHead if generalized else SNLHead)(
        stage_num=stage_num, output_relu=True, zero_init_output=False, **SNL_ARGS)


@pytest.mark.parametrize('generalized,stage_num,w2_sign,block_name', [
    (False, 1, 'minus', 'snl_block'), (True, 1, 'minus', 'snl_block'),
    (True, 3, 'minus', 'nl_block'), (False, 2, 'plus', 'snl_block')])
def test_snl_converts_loads_strictly_and_matches(generalized, stage_num, w2_sign, block_name):
    reference = randomize(SNLAuthorsHead(stage_num=stage_num, generalized=generalized,
                                         w2_sign=w2_sign, block_name=block_name, **SNL_ARGS))
    report = ConversionReport()
    converted = convert_snl(reference.state_dict(), w2_sign=w2_sign, report=report)
    target = load_strict(snl_target(generalized, stage_num), converted)
    assert_same_output(reference, target, [feature(2, 16, 5, 6)])
    units = [''] if stage_num == 1 else [f'units.{k}.' for k in range(stage_num)]
    assert [k for k, _ in report.changed] == (
        [f'snl_block.{u}w2.weight' for u in units] if w2_sign == 'minus' else [])
    assert sorted(k for k, _ in report.filled) == sorted(
        ['snl_block.phi.bias', 'snl_block.theta.bias'] + [f'snl_block.{u}g.bias' for u in units])
    assert any(f'stage_num={stage_num}' in n and ('GSNLHead' if generalized else 'SNLHead') in n
               for n in report.notes)


def test_snl_unit_list_names_flat_unit_and_bare_stage():
    reference = randomize(SNLAuthorsHead(stage_num=2, **SNL_ARGS))
    source = reference.state_dict()
    expected = convert_snl(source)
    assert list(convert_snl(renamed(source, '.layers.', '.stages.'))) == list(expected)
    one = randomize(SNLAuthorsHead(**SNL_ARGS)).state_dict()
    flat = renamed(one, 'layers.0.', '')  # the one unit stored beside t and p
    assert set(convert_snl(flat)) == set(convert_snl(one)) == set(snl_target().state_dict())
    stage = randomize(AuthorsSNLStage(8, 4, 2, generalized=False))
    from nlseg.models import SpectralNonLocalBlock
    block = load_strict(SpectralNonLocalBlock(8, norm_cfg=BN, stage_num=2, output_relu=True,
                                              zero_init_output=False),
                        convert_snl(stage.state_dict(), w2_sign='plus'))
    assert_same_output(stage, block, feature(2, 8, 4, 5))


def test_snl_w2_sign_and_errors():
    source = randomize(SNLAuthorsHead(**SNL_ARGS)).state_dict()
    torch.testing.assert_close(convert_snl(source, w2_sign='plus')['snl_block.w2.weight'],
                               source['snl_block.layers.0.w_2.weight'])
    torch.testing.assert_close(convert_snl(source)['snl_block.w2.weight'],
                               -source['snl_block.layers.0.w_2.weight'])
    with pytest.raises(ValueError, match='w2_sign must be one of'):
        convert_snl(source, w2_sign='minus ')
    del source['snl_block.layers.0.bn.running_var'], source['snl_block.layers.0.w_2.weight']
    with pytest.raises(ConversionError, match=r'missing 2 key') as error:
        convert_snl(source)
    assert 'layers.0.bn.running_var' in str(error.value) and 'w_2.weight' in str(error.value)
    with pytest.raises(ConversionError, match=r't\.weight.*p\.weight.*0\.g\.weight'):
        convert_snl({'conv_seg.weight': torch.zeros(3, 8, 1, 1)})


# ======================================================= Hamburger: NMF bases made equal
def eval_bases(B, S, D, R, dtype=torch.float64):
    """nlseg's evaluation bases (seed ``eval_seed``, one draw shared by the batch)."""
    g = torch.Generator().manual_seed(EVAL_SEED)
    return F.normalize(torch.rand((S, D, R), generator=g), dim=1).to(dtype).repeat(B, 1, 1)


@pytest.fixture
def fixed_mmseg_bases(monkeypatch):
    """mmseg's NMF2D draws new random bases at every forward; give it nlseg's eval bases."""
    def build_bases(self, B, S, D, R, device=None):
        return eval_bases(B, S, D, R).to(device)
    monkeypatch.setattr(MMSegNMF2D, '_build_bases', build_bases)


def ham_args(**extra):
    """Fresh arguments of a Hamburger head (mmseg's ham fills its ham_kwargs in place)."""
    return dict(ham_channels=16, channels=6, num_classes=3, norm_cfg=dict(BN),
                ham_kwargs=dict(MD_R=4), dropout_ratio=0.1, **extra)


def test_embed_kernel_is_exact():
    w = torch.randn(5, 4, 1, 1, dtype=torch.float64)
    x = feature(2, 4, 6, 7)
    torch.testing.assert_close(F.conv2d(x, embed_kernel(w), padding=1), F.conv2d(x, w),
                               rtol=0, atol=1e-12)
    with pytest.raises(ConversionError, match='1x1'):
        embed_kernel(torch.zeros(5, 4, 3, 3))


# ============================================================ mmseg's LightHamHead
def test_lightham_converts_loads_strictly_and_matches(fixed_mmseg_bases):
    levels = dict(in_channels=[8, 12], in_index=[0, 1])
    reference = randomize(LightHamHead(**ham_args(**levels)))
    report = ConversionReport()
    converted = convert_lightham(reference.state_dict(), report=report)
    assert converted['squeeze.conv.weight'].shape == (16, 20, 3, 3)
    assert converted['align.conv.weight'].shape == (6, 16, 3, 3)
    assert sorted(k for k, _ in report.changed) == ['align.conv.weight', 'squeeze.conv.weight']
    target = load_strict(HamburgerHead(trailing_relu=True, **ham_args(**levels)), converted)
    inputs = [feature(2, 8, 8, 8, seed=1).relu(), feature(2, 12, 4, 4, seed=2).relu()]
    assert_same_output(reference, target, inputs)


def test_lightham_fixed_bases_buffer_is_carried_over():
    """rand_init=False: mmseg registers ham.bases lazily at the first forward; the converted
    buffer makes both heads use the same bases with no patching."""
    levels = dict(in_channels=[8], in_index=[0])
    ham_kwargs = dict(MD_R=4, rand_init=False)
    reference = LightHamHead(**ham_args(**levels) | dict(ham_kwargs=ham_kwargs))
    reference.eval()([feature(1, 8, 4, 4).float().relu()])  # registers ham.bases (float32)
    randomize(reference)
    reference.hamburger.ham.bases.abs_()  # NMF bases are non-negative
    report = ConversionReport()
    converted = convert_lightham(reference.state_dict(), report=report)
    assert converted['hamburger.ham.bases'].shape == (1, 16, 4)
    assert any('rand_init=False' in note for note in report.notes)
    target = load_strict(HamburgerHead(trailing_relu=True, **ham_args(**levels) | dict(
        ham_kwargs=ham_kwargs)), converted)
    assert_same_output(reference, target, [feature(2, 8, 6, 6).relu()])


def test_lightham_refuses_3x3_and_names_the_other_converter(fixed_mmseg_bases):
    source = randomize(SegMMHamHead(**ham_args(in_channels=8))).state_dict()
    with pytest.raises(ConversionError, match=r'3x3 kernel.*seg_mm_hamhead2nlseg\.py'):
        convert_lightham(source)
    light = randomize(LightHamHead(**ham_args(in_channels=[8], in_index=[0]))).state_dict()
    with pytest.raises(ConversionError, match=r'1x1 kernel.*lightham2nlseg\.py'):
        convert_seg_mm_hamhead(light)
    del light['hamburger.ham_out.conv.weight']
    with pytest.raises(ConversionError, match=r'hamburger\.ham_out\.conv\.weight'):
        convert_lightham(light)


# ====================================================== Enjoy-Hamburger seg_mm HamHead
class SegMMHamHead(BaseDecodeHead):
    """Enjoy-Hamburger's seg_mm ``HamHead``: 3x3 squeeze (padding 1), the Hamburger with
    ``ham_in``/``ham``/``ham_out`` (the class mmseg's LightHamHead took over, used here),
    3x3 align, cls_seg."""

    def __init__(self, ham_channels=512, ham_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.ham_channels = ham_channels
        self.squeeze = ConvModule(self.in_channels, ham_channels, 3, padding=1,
                                  conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                  act_cfg=self.act_cfg)
        self.hamburger = MMSegHamburger(ham_channels, dict(ham_kwargs or {}),
                                        norm_cfg=self.norm_cfg)
        self.align = ConvModule(ham_channels, self.channels, 3, padding=1,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                act_cfg=self.act_cfg)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        return self.cls_seg(self.align(self.hamburger(self.squeeze(x))))


def test_seg_mm_hamhead_converts_loads_strictly_and_matches(fixed_mmseg_bases):
    reference = randomize(SegMMHamHead(**ham_args(in_channels=8)))
    report = ConversionReport()
    converted = convert_seg_mm_hamhead(reference.state_dict(), report=report)
    assert not report.changed  # 3x3 in both
    target = load_strict(HamburgerHead(trailing_relu=True, **ham_args(in_channels=8)),
                         converted)
    assert_same_output(reference, target, [feature(2, 8, 6, 5).relu()])


# =================================================== Enjoy-Hamburger HamburgerV1 block
class EnjoyHamburgerV1(nn.Module):
    """Enjoy-Hamburger's ``HamburgerV1``: lower bread Sequential(Conv2d, ReLU) for NMF (a
    bare Conv2d for VQ/CD), the ham, upper bread Sequential(Conv2d(bias=False), BN), empty
    shortcut, relu(x + .). The ham: mmseg's NMF2D (the authors' NMF, ported), or nlseg's
    VQ2D/CD2D (parameter-free: what is checked is the mapping of the breads)."""

    def __init__(self, in_c, ham_type='NMF', D=16, R=4):
        super().__init__()
        if ham_type == 'NMF':
            self.lower_bread = nn.Sequential(nn.Conv2d(in_c, D, 1), nn.ReLU(inplace=True))
            self.ham = MMSegNMF2D(dict(MD_R=R))
        else:
            self.lower_bread = nn.Conv2d(in_c, D, 1)
            self.ham = {'VQ': VQ2D, 'CD': CD2D}[ham_type](D, MD_R=R)
        self.upper_bread = nn.Sequential(nn.Conv2d(D, in_c, 1, bias=False),
                                         nn.BatchNorm2d(in_c))
        self.shortcut = nn.Sequential()

    def forward(self, x):
        shortcut = self.shortcut(x)
        x = self.upper_bread(self.ham(self.lower_bread(x)))
        return F.relu(x + shortcut, inplace=True)


@pytest.mark.parametrize('ham_type', ['NMF', 'VQ', 'CD'])
def test_hamburger_v1_converts_loads_strictly_and_matches(ham_type, fixed_mmseg_bases):
    reference = randomize(EnjoyHamburgerV1(10, ham_type))
    report = ConversionReport()
    converted = convert_hamburger_v1(reference.state_dict(), report=report)
    target = load_strict(Hamburger(10, 16, ham_type=ham_type, norm_cfg=BN,
                                   trailing_relu=True, ham_kwargs=dict(MD_R=4)), converted)
    assert_same_output(reference, target, feature(2, 10, 5, 6))
    assert any(ham_type in note for note in report.notes)


def test_hamburger_v1_in_a_model_old_batch_norm_and_errors(fixed_mmseg_bases):
    block = randomize(EnjoyHamburgerV1(10)).state_dict()
    del block['upper_bread.1.num_batches_tracked']  # files from before torch 0.4.1
    source = OrderedDict([('squeeze.conv.weight', torch.randn(10, 4, 3, 3))])
    source.update((f'module.hamburger.{k}', v) for k, v in block.items())
    report = ConversionReport()
    converted = convert_hamburger_v1(source, report=report)
    assert report.kept == ['squeeze.conv.weight']
    assert [k for k, _ in report.filled] == ['module.hamburger.upper_bread.bn.num_batches_tracked']
    load_strict(Hamburger(10, 16, norm_cfg=BN, ham_kwargs=dict(MD_R=4)),
                {k[len('module.hamburger.'):]: v for k, v in converted.items()
                 if k.startswith('module.hamburger.')})
    del block['lower_bread.0.bias'], block['upper_bread.1.running_mean']
    with pytest.raises(ConversionError, match=r'lower_bread\.0\.bias.*running_mean'):
        convert_hamburger_v1(block)
    with pytest.raises(ConversionError, match=r'upper_bread\.0\.weight'):
        convert_hamburger_v1({'lower_bread.0.weight': torch.zeros(1)})


# ================================================================== files and wrappers
@pytest.mark.parametrize('wrapper', ['state_dict', 'model', None])
def test_save_and_split_keep_the_wrapper(tmp_path, wrapper):
    sd = OrderedDict(a=torch.arange(3.0))
    path = str(tmp_path / 'sub' / 'out.pth')
    save_checkpoint(path, sd, wrapper, meta=dict(classes=('x', 'y')) if wrapper else None)
    loaded = load_checkpoint(path)
    state_dict, found = split_state_dict(loaded)
    assert found == wrapper and torch.equal(state_dict['a'], sd['a'])
    if wrapper:
        assert loaded['meta'] == dict(classes=('x', 'y'))
    assert [p.name for p in (tmp_path / 'sub').iterdir()] == ['out.pth']  # no temp left


def test_load_refuses_pickled_objects_and_bad_files(tmp_path):
    import argparse
    path = tmp_path / 'args.pth'
    torch.save({'model': {'w': torch.zeros(1)}, 'args': argparse.Namespace(lr=1)}, path)
    with pytest.raises(ConversionError, match=r'argparse\.Namespace.*--unsafe-load'):
        load_checkpoint(str(path))
    assert load_checkpoint(str(path), unsafe=True)['args'].lr == 1
    (tmp_path / 'cut.pth').write_bytes(path.read_bytes()[:40])
    with pytest.raises(ConversionError, match='truncated or corrupt'):
        load_checkpoint(str(tmp_path / 'cut.pth'))
    with pytest.raises(ConversionError, match='does not exist'):
        load_checkpoint(str(tmp_path / 'none.pth'))
    with pytest.raises(ConversionError, match="no 'state_dict' or 'model' entry"):
        split_state_dict({'epoch': 3, 'net': {}})
    with pytest.raises(TypeError, match='map str keys to tensors'):
        convert_arnlb({'meta': 3})


# ======================================================================== command line
def _sources():
    """(script, source state_dict, target builder) for every converter."""
    return {
        'arnlb2nlseg.py': (lambda: arnlb_reference().state_dict(),
                           lambda: ARNLHead(**HEAD_ARGS)),
        'snl2nlseg.py': (lambda: randomize(SNLAuthorsHead(generalized=True, stage_num=2,
                                                          **SNL_ARGS)).state_dict(),
                         lambda: snl_target(generalized=True, stage_num=2)),
        'lightham2nlseg.py': (
            lambda: randomize(LightHamHead(**ham_args(in_channels=[8], in_index=[0])))
            .state_dict(),
            lambda: HamburgerHead(trailing_relu=True,
                                  **ham_args(in_channels=[8], in_index=[0]))),
        'seg_mm_hamhead2nlseg.py': (
            lambda: randomize(SegMMHamHead(**ham_args(in_channels=8))).state_dict(),
            lambda: HamburgerHead(trailing_relu=True, **ham_args(in_channels=8))),
        'hamburger_v1_2nlseg.py': (
            lambda: randomize(EnjoyHamburgerV1(10)).state_dict(),
            lambda: Hamburger(10, 16, norm_cfg=BN, trailing_relu=True,
                              ham_kwargs=dict(MD_R=4))),
    }


@pytest.mark.slow
@pytest.mark.parametrize('script', sorted(_sources()))
def test_cli_converts_a_saved_checkpoint(tmp_path, script):
    make_source, make_target = _sources()[script]
    head = make_source()
    source = OrderedDict([('backbone.stem.weight', torch.randn(2, 3, 1, 1))])
    source.update((f'decode_head.{k}', v) for k, v in head.items())
    src, dst = tmp_path / 'src.pth', tmp_path / 'out' / 'dst.pth'
    torch.save({'state_dict': source, 'meta': dict(iter=4), 'optimizer': {}}, src)
    run = subprocess.run([sys.executable, osp.join(CONVERTERS, script), str(src), str(dst)],
                         capture_output=True, text=True, env=tool_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    assert 'kept: backbone.* (1)' in run.stdout and 'optimizer' in run.stdout
    out = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(out) == {'state_dict', 'meta'} and out['meta'] == dict(iter=4)
    assert torch.equal(out['state_dict']['backbone.stem.weight'], source['backbone.stem.weight'])
    load_strict(make_target(), {k[len('decode_head.'):]: v
                                for k, v in out['state_dict'].items()
                                if k.startswith('decode_head.')})


@pytest.mark.slow
def test_cli_error_exit_status(tmp_path):
    """A source of another layout: exit status 1, one error line naming the missing keys,
    nothing written (the error path is shared by every script)."""
    src = tmp_path / 'src.pth'
    torch.save({'state_dict': {'backbone.stem.weight': torch.zeros(1)}}, src)
    run = subprocess.run([sys.executable, osp.join(CONVERTERS, 'arnlb2nlseg.py'), str(src),
                          str(tmp_path / 'bad.pth')], capture_output=True, text=True,
                         env=tool_env(), timeout=300)
    assert run.returncode == 1 and run.stderr.startswith('error: ')
    assert 'missing' in run.stderr and 'non_blocak.g.conv.weight' in run.stderr
    assert not (tmp_path / 'bad.pth').exists()
