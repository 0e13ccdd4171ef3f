"""The model converters (nlseg/converters/): for each source, a state_dict with the source's
key layout converts, loads strictly into the nlseg module and gives the source module's
output (float64, eval mode); missing and unknown keys are named. Their command lines are
tested in tests/test_tools/test_model_converters.py.

The sources that are not installed (the ARNLB authors' ARNLHead, the SNL authors' head,
Enjoy-Hamburger's HamburgerV1 and seg_mm HamHead) are re-implemented, minimally, with their
key layouts and forwards in tests/references/; mmseg's LightHamHead is the installed one.
"""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads import LightHamHead
from mmseg.models.decode_heads.ham_head import NMF2D as MMSegNMF2D

from nlseg.converters import (ConversionError, ConversionReport, convert_arnlb,
                              convert_hamburger_v1, convert_lightham, convert_seg_mm_hamhead,
                              convert_snl)
from nlseg.models import ARNLHead, Hamburger, HamburgerHead
from tests.references.enjoy_hamburger import EnjoyHamburgerV1, SegMMHamHead
from tests.references.snl_iccv2021 import AuthorsSNLStage, SNLAuthorsHead
from tests.test_converters.model_sources import (BN, HEAD_ARGS, SNL_ARGS, arnlb_reference,
                                                 assert_same_output, feature, ham_args,
                                                 load_strict, randomize, snl_target)

EVAL_SEED = 0  # nlseg's default eval_seed of the hams


# =============================================================== ARNLB authors' ARNLHead
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


def test_lightham_to_kernel_size_1_keeps_the_kernels(fixed_mmseg_bases):
    """--kernel-size 1: HamburgerHead(kernel_size=1), LightHamHead's form, takes the 1x1
    squeeze and align kernels unchanged and gives LightHamHead's output."""
    levels = dict(in_channels=[8, 12], in_index=[0, 1])
    reference = randomize(LightHamHead(**ham_args(**levels)))
    report = ConversionReport()
    converted = convert_lightham(reference.state_dict(), report=report, kernel_size=1)
    assert converted['squeeze.conv.weight'].shape == (16, 20, 1, 1)
    torch.testing.assert_close(converted['align.conv.weight'],
                               reference.state_dict()['align.conv.weight'], rtol=0, atol=0)
    assert not report.changed
    assert any('kernel_size=1' in note for note in report.notes)
    target = load_strict(HamburgerHead(trailing_relu=True, kernel_size=1,
                                       **ham_args(**levels)), converted)
    inputs = [feature(2, 8, 8, 8, seed=1).relu(), feature(2, 12, 4, 4, seed=2).relu()]
    assert_same_output(reference, target, inputs)
    for bad in (2, 5):
        with pytest.raises(ValueError, match='kernel_size must be 1 or 3'):
            convert_lightham(reference.state_dict(), kernel_size=bad)


def test_seg_mm_hamhead_cannot_become_kernel_size_1():
    from nlseg.converters.lightham import convert_ham_head
    with pytest.raises(ValueError, match='needs kernel_size=3'):
        convert_ham_head({}, 3, "Enjoy-Hamburger's seg_mm HamHead", 'lightham2nlseg.py',
                         kernel_size=1)


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
def test_seg_mm_hamhead_converts_loads_strictly_and_matches(fixed_mmseg_bases):
    reference = randomize(SegMMHamHead(**ham_args(in_channels=8)))
    report = ConversionReport()
    converted = convert_seg_mm_hamhead(reference.state_dict(), report=report)
    assert not report.changed  # 3x3 in both
    target = load_strict(HamburgerHead(trailing_relu=True, **ham_args(in_channels=8)),
                         converted)
    assert_same_output(reference, target, [feature(2, 8, 6, 5).relu()])


# =================================================== Enjoy-Hamburger HamburgerV1 block
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


