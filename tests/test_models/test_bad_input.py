"""Bad input across every block and head (issue 8).

Two tables:

* ``CONSTRUCTOR_CASES``: each invalid constructor argument of every block and head raises a
  ValueError or TypeError whose message names the argument (and, for choices and ranges, the
  accepted values). ``test_constructor_table_covers_every_argument`` keeps the table complete:
  every constructor parameter of an nlseg block/head has at least one case.
* ``INPUT_CASES`` x ``MODULES``: a wrong channel count, a 3-D or 5-D tensor, an integer or bool
  dtype, an empty batch or map and a non-tensor raise a ValueError/TypeError with a clear
  message, BEFORE any heavy work: no submodule runs and no torch function other than a shape
  or dtype query is called (recorded by a ``TorchFunctionMode`` and forward pre-hooks; the same
  spy sees the work of a valid forward, ``test_spy_sees_the_work_of_a_valid_forward``).

Empty batches raise ``ValueError('... empty batch ...')`` in every module (documented in
:mod:`nlseg.validation`).
"""
from __future__ import annotations

import inspect
import math
import re
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode

import nlseg  # noqa: F401  (registers the heads)
from nlseg.models import (CD2D, NMF2D, VQ2D, AdaptiveNonLocalBlock, ARNLHead, GSNLHead,
                          Hamburger, HamburgerHead, NLTVHead, NLTVSoftmax, NonLocalBlock,
                          NonLocalHead, NonLocalStage, NSHead, SNLHead, SpectralNonLocalBlock)
from nlseg.validation import (FLOAT_DTYPES, check_bool, check_choice, check_feature_map,
                              check_int, check_real)

C = 8          # in_channels of every block / head
HEAD = dict(in_channels=C, channels=4, num_classes=3)
HAM = dict(channels=C, MD_R=4)


def fcn_base(**kw) -> dict:
    """A tiny mmseg FCNHead config (the base head of NLTVHead)."""
    return dict(type='FCNHead', num_convs=1, concat_input=False, **{**HEAD, **kw})


#: class -> default constructor kwargs (valid); a case overrides some of them
DEFAULTS: dict[type, dict] = {
    NonLocalBlock: dict(in_channels=C),
    AdaptiveNonLocalBlock: dict(in_channels=C),
    NonLocalStage: dict(in_channels=C),
    SpectralNonLocalBlock: dict(in_channels=C),
    NMF2D: HAM, VQ2D: HAM, CD2D: HAM,
    Hamburger: dict(in_channels=C, ham_channels=C, ham_kwargs=dict(MD_R=4)),
    NLTVSoftmax: dict(k=3),
    NonLocalHead: HEAD, ARNLHead: HEAD, NSHead: HEAD, SNLHead: HEAD, GSNLHead: HEAD,
    HamburgerHead: dict(HEAD, ham_channels=C, ham_kwargs=dict(MD_R=4)),
    NLTVHead: dict(base_head=fcn_base(), nltv=dict(k=3)),
}


def build(cls: type, **kwargs) -> nn.Module:
    return cls(**{**DEFAULTS[cls], **kwargs})


def case(cls: type, kwargs: dict, exc: type, match: str):
    return pytest.param(cls, kwargs, exc, match, id=f'{cls.__name__}-{kwargs}')


V, T = ValueError, TypeError
NL_MODES_RE = r"mode must be one of \('gaussian', 'embedded_gaussian', 'dot_product', " \
              r"'concatenation'\), got 'softmax'"
IMPL_RE = r"impl must be one of \('auto', 'dense', 'efficient'\), got 'fast'"
NS_MODES_RE = r"mode must be one of \('embedded_gaussian', 'gaussian', " \
              r"'symmetric_embedded_gaussian', 'symmetric_relu_dot'\), got 'softmax'"
AFFINITY_RE = r"affinity must be one of \('symmetric', 'random_walk'\), got 'laplacian'"
HAM_GRAD_RE = r"grad must be one of \('one_step', 'bptt'\), got 'full'"
BASES_INIT_RE = r"bases_init must be one of \('random', 'online', 'fixed', 'learned'\), got 'warm'"
HAM_TYPE_RE = r"ham_type must be one of \('NMF', 'VQ', 'CD'\), got 'SVD'"


def nl_family_cases(cls: type) -> list:
    """Arguments shared by NonLocalBlock, AdaptiveNonLocalBlock, NonLocalStage, SNL."""
    return [
        case(cls, dict(in_channels=0), V, r'in_channels must be an integer >= 1, got 0'),
        case(cls, dict(in_channels=8.0), T, r'in_channels must be an integer >= 1, got 8\.0'),
        case(cls, dict(in_channels=True), T, r'in_channels must be an integer'),
        case(cls, dict(reduction=0), V, r'reduction must be an integer >= 1, got 0'),
        case(cls, dict(reduction=2.5), T, r'reduction must be an integer'),
        case(cls, dict(reduction=None), T, r'reduction must be an integer >= 1, got None'),
        case(cls, dict(impl='fast'), V, IMPL_RE),
        case(cls, dict(conv_cfg='Conv2d'), T, r"conv_cfg must be a dict or None, got 'Conv2d'"),
        case(cls, dict(norm_cfg=['BN']), T, r'norm_cfg must be a dict or None'),
    ]


def ham_cases(cls: type) -> list:
    return [
        case(cls, dict(channels=0), V, r'channels must be an integer >= 1, got 0'),
        case(cls, dict(channels='8'), T, r"channels must be an integer >= 1, got '8'"),
        case(cls, dict(MD_S=0), V, r'MD_S must be an integer >= 1, got 0'),
        case(cls, dict(MD_S=3), V, r'channels \(8\) must be divisible by MD_S \(3\)'),
        case(cls, dict(MD_R=0), V, r'MD_R must be an integer >= 1'),
        case(cls, dict(MD_R=4.0), T, r'MD_R must be an integer'),
        case(cls, dict(train_steps=0), V, r'train_steps must be an integer >= 1'),
        case(cls, dict(eval_steps='7'), T, r'eval_steps must be an integer'),
        case(cls, dict(inv_t=0), V, r'inv_t must be > 0, got 0'),
        case(cls, dict(inv_t='100'), T, r'inv_t must be a real number'),
        case(cls, dict(eta=1.5), V, r'eta must be in \[0, 1\], got 1\.5'),
        case(cls, dict(eta=None), T, r'eta must be a real number \(in \[0, 1\]\)'),
        case(cls, dict(rand_init='no'), T, r"rand_init must be True or False, got 'no'"),
        case(cls, dict(channels=None, rand_init=False), V,
             r'rand_init=False\) needs `channels`'),
        case(cls, dict(bases_init='warm'), V, BASES_INIT_RE),
        case(cls, dict(bases_init='learned'), V, r"bases_init='learned' needs grad='bptt'"),
        case(cls, dict(bases_init='random', rand_init=False), V,
             r"rand_init=False contradicts bases_init='random'"),
        case(cls, dict(grad='full'), V, HAM_GRAD_RE),
        case(cls, dict(eval_seed=-1), V, r'eval_seed must be an integer >= 0, got -1'),
        case(cls, dict(eval_seed=0.5), T, r'eval_seed must be an integer'),
        case(cls, dict(eps=0.0), V, r'eps must be > 0, got 0\.0'),
        case(cls, dict(eps=float('nan')), V, r'eps must be > 0, got nan'),
    ]


def head_base_cases(cls: type) -> list:
    """BaseDecodeHead arguments that mmseg leaves unchecked, checked by the nlseg heads."""
    return [
        case(cls, dict(channels=0), V, r'channels must be an integer >= 1, got 0'),
        case(cls, dict(channels=4.0), T, r'channels must be an integer'),
        case(cls, dict(in_channels='8'), T, r"in_channels must be an integer >= 1, got '8'"),
        case(cls, dict(in_channels=-8), V, r'in_channels must be an integer >= 1, got -8'),
        case(cls, dict(num_classes=0), V, r'num_classes must be an integer >= 1, got 0'),
    ]


#: BaseDecodeHead arguments that mmseg (or torch's dropout) checks itself: nlseg does not
#: repeat those checks (one owner per argument), the heads pass them through to mmseg.
MMSEG_CHECKED = [
    (dict(input_transform='concat'), AssertionError),
    (dict(in_index='last'), AssertionError),
    (dict(input_transform='resize_concat', in_index=[0, 1]), AssertionError),
    (dict(input_transform='resize_concat', in_channels=[4, 4], in_index=[0]), AssertionError),
    (dict(dropout_ratio=1.5), ValueError),
    (dict(in_index=[0, 1]), AssertionError),  # a list in_index with one in_channels
]


@pytest.mark.parametrize('kwargs,exc', MMSEG_CHECKED, ids=[str(k) for k, _ in MMSEG_CHECKED])
@pytest.mark.parametrize('cls', [NonLocalHead, SNLHead, HamburgerHead])
def test_head_arguments_checked_by_mmseg_still_raise(cls, kwargs, exc):
    with pytest.raises(exc):
        build(cls, **kwargs)


CONSTRUCTOR_CASES = [
    # ---- NonLocalBlock
    *nl_family_cases(NonLocalBlock),
    case(NonLocalBlock, dict(mode='softmax'), V, NL_MODES_RE),
    case(NonLocalBlock, dict(mode=None), V, r'mode must be one of'),
    case(NonLocalBlock, dict(use_scale='yes'), T, r"use_scale must be True or False, got 'yes'"),
    case(NonLocalBlock, dict(sub_sample=1), T, r'sub_sample must be True or False, got 1'),
    case(NonLocalBlock, dict(zero_init_output='yes'), T, r'zero_init_output must be True or False'),
    case(NonLocalBlock, dict(zeros_init='yes'), T, r"zeros_init must be True or False, got 'yes'"),
    case(NonLocalBlock, dict(zeros_init=True, zero_init_output=False), V,
         r'zeros_init=True \(mmcv NonLocal2d\) contradicts zero_init_output=False'),
    case(NonLocalBlock, dict(std=-0.01), V, r'std must be >= 0, got -0\.01'),
    case(NonLocalBlock, dict(std='0.01'), T, r"std must be a real number"),
    case(AdaptiveNonLocalBlock, dict(std=-1.0), V, r'std must be >= 0, got -1\.0'),
    case(AdaptiveNonLocalBlock, dict(zero_init_output=None), T,
         r'zero_init_output must be True or False'),
    # ---- AdaptiveNonLocalBlock
    *nl_family_cases(AdaptiveNonLocalBlock),
    case(AdaptiveNonLocalBlock, dict(lambda_act='relu'), V,
         r"lambda_act must be one of \(None, 'softplus'\), got 'relu'"),
    case(AdaptiveNonLocalBlock, dict(mode='dot_product'), V,
         r"does not support mode='dot_product'.*\('gaussian', 'embedded_gaussian'\)"),
    case(AdaptiveNonLocalBlock, dict(mode='softmax'), V, NL_MODES_RE),
    case(AdaptiveNonLocalBlock, dict(use_scale=None), T, r'use_scale must be True or False'),
    # ---- NonLocalStage
    *nl_family_cases(NonLocalStage),
    case(NonLocalStage, dict(num_units=0), V, r'num_units must be an integer >= 1, got 0'),
    case(NonLocalStage, dict(num_units=2.0), T, r'num_units must be an integer'),
    case(NonLocalStage, dict(mode='concatenation'), V,
         r"does not support mode='concatenation'.*row-normalised"),
    case(NonLocalStage, dict(mode='softmax'), V, NS_MODES_RE),
    case(NonLocalStage, dict(mode='relu_dot'), V, r"mode must be one of .*'symmetric_relu_dot'"
                                                 r"\), got 'relu_dot'"),
    case(NonLocalStage, dict(use_scale='False'), T, r'use_scale must be True or False'),
    case(NonLocalStage, dict(zero_init_output=0), T, r'zero_init_output must be True or False'),
    case(NonLocalStage, dict(init_std=-1.0), V, r'init_std must be >= 0, got -1\.0'),
    case(NonLocalStage, dict(output_relu=1, zero_init_output=False), T,
         r'output_relu must be True or False, got 1'),
    case(NonLocalStage, dict(output_relu=True), V,
         r'output_relu=True needs zero_init_output=False'),
    # ---- SpectralNonLocalBlock (SNL and gSNL)
    *nl_family_cases(SpectralNonLocalBlock),
    case(SpectralNonLocalBlock, dict(affinity='laplacian'), V, AFFINITY_RE),
    case(SpectralNonLocalBlock, dict(zero_init_output='no'), T,
         r'zero_init_output must be True or False'),
    case(SpectralNonLocalBlock, dict(generalized=True, affinity='laplacian'), V, AFFINITY_RE),
    case(SpectralNonLocalBlock, dict(stage_num=0), V, r'stage_num must be an integer >= 1, got 0'),
    case(SpectralNonLocalBlock, dict(stage_num=2.0), T, r'stage_num must be an integer'),
    case(SpectralNonLocalBlock, dict(output_relu='yes'), T,
         r"output_relu must be True or False, got 'yes'"),
    case(SpectralNonLocalBlock, dict(output_relu=True), V,
         r'output_relu=True needs zero_init_output=False'),
    case(SpectralNonLocalBlock, dict(init_std='0.1'), T, r'init_std must be a real number'),
    case(SpectralNonLocalBlock, dict(zero_init_local='yes', zero_init_output=False), T,
         r"zero_init_local must be True or False, got 'yes'"),
    case(SpectralNonLocalBlock, dict(zero_init_local=True), V,
         r'zero_init_local=True needs zero_init_output=False'),
    case(SpectralNonLocalBlock, dict(generalized='True'), T,
         r"generalized must be True or False, got 'True'"),
    case(SpectralNonLocalBlock, dict(generalized=True, reduction=-1), V,
         r'reduction must be an integer >= 1, got -1'),
    # ---- hams
    *ham_cases(NMF2D), *ham_cases(VQ2D), *ham_cases(CD2D),
    case(CD2D, dict(beta=-0.1), V, r'beta must be >= 0, got -0\.1'),
    case(CD2D, dict(beta='0.1'), T, r'beta must be a real number'),
    # ---- Hamburger
    case(Hamburger, dict(in_channels=0), V, r'in_channels must be an integer >= 1, got 0'),
    case(Hamburger, dict(in_channels=8.0), T, r'in_channels must be an integer'),
    case(Hamburger, dict(ham_channels=-1), V, r'ham_channels must be an integer >= 1, got -1'),
    case(Hamburger, dict(ham_type='SVD'), V, HAM_TYPE_RE),
    case(Hamburger, dict(ham_type='nmf'), V, r"ham_type must be one of \('NMF', 'VQ', 'CD'\)"),
    case(Hamburger, dict(ham_kwargs=[('MD_R', 4)]), T, r'ham_kwargs must be a dict or None'),
    case(Hamburger, dict(ham_kwargs=dict(MD_X=4)), T, r"unexpected keyword argument 'MD_X'"),
    case(Hamburger, dict(ham_kwargs=dict(grad='full')), V, HAM_GRAD_RE),
    case(Hamburger, dict(ham_kwargs=dict(MD_S=3)), V, r'divisible by MD_S \(3\)'),
    case(Hamburger, dict(norm_cfg='BN'), T, r"norm_cfg must be a dict or None, got 'BN'"),
    case(Hamburger, dict(conv_cfg=1), T, r'conv_cfg must be a dict or None, got 1'),
    case(Hamburger, dict(trailing_relu='False'), T, r'trailing_relu must be True or False'),
    case(Hamburger, dict(low_rank_upper='auto'), T, r'low_rank_upper must be True or False'),
    case(Hamburger, dict(low_rank_upper=False, impl='efficient'), V,
         r'low_rank_upper=False \(deprecated\) contradicts impl='),
    case(Hamburger, dict(impl='fast'), V, IMPL_RE),
    case(Hamburger, dict(impl='efficient', norm_cfg=dict(type='GN', num_groups=2)), V,
         r"impl='efficient' cannot apply here: its norm is GroupNorm"),
    case(Hamburger, dict(lower_bread='no'), T, r"lower_bread must be True or False, got 'no'"),
    case(Hamburger, dict(lower_bread=False, ham_channels=16), V,
         r'lower_bread=False needs ham_channels == in_channels'),
    case(Hamburger, dict(upper_bread=1), T, r'upper_bread must be True or False, got 1'),
    case(Hamburger, dict(upper_bread=False, ham_channels=4), V,
         r'upper_bread=False needs ham_channels == in_channels'),
    case(Hamburger, dict(upper_bread=False, impl='efficient'), V,
         r"impl='efficient' .*needs upper_bread=True"),
    # ---- NLTVSoftmax
    case(NLTVSoftmax, dict(k=0), V, r'k must be an integer >= 1, got 0'),
    case(NLTVSoftmax, dict(k=2.0), T, r'k must be an integer'),
    case(NLTVSoftmax, dict(lam=-1.0), V, r'lam must be >= 0, got -1\.0'),
    case(NLTVSoftmax, dict(lam='3'), T, r"lam must be a real number.*got '3'"),
    case(NLTVSoftmax, dict(tau=0.0), V, r'tau must be > 0, got 0\.0'),
    case(NLTVSoftmax, dict(tau='fast'), V, r"tau must be a float > 0 or 'auto', got 'fast'"),
    case(NLTVSoftmax, dict(tau=None), T, r'tau must be a real number'),
    case(NLTVSoftmax, dict(eps=0), V, r'eps must be > 0, got 0'),
    case(NLTVSoftmax, dict(eps=float('nan')), V, r'eps must not be NaN'),
    case(NLTVSoftmax, dict(train_iters=-1), V, r'train_iters must be an integer >= 0, got -1'),
    case(NLTVSoftmax, dict(train_iters=1.5), T, r'train_iters must be an integer'),
    case(NLTVSoftmax, dict(test_iters=-2), V, r'test_iters must be an integer >= 0, got -2'),
    case(NLTVSoftmax, dict(max_iters='1500'), T, r'max_iters must be an integer'),
    case(NLTVSoftmax, dict(tol=-1e-5), V, r'tol must be >= 0'),
    case(NLTVSoftmax, dict(tol='small'), T, r'tol must be a real number'),
    case(NLTVSoftmax, dict(grad='adjoint'), V,
         r"grad must be one of \('one_step', 'bptt'\), got 'adjoint'"),
    case(NLTVSoftmax, dict(lambda1=-1.0), V, r'lambda1 must be >= 0, got -1\.0'),
    case(NLTVSoftmax, dict(lambda2=0.0, learnable_graph=True), V,
         r'lambda2 \(learnable_graph=True\) must be > 0, got 0\.0'),
    case(NLTVSoftmax, dict(sigma_a=0.0), V, r'sigma_a must be > 0, got 0\.0'),
    case(NLTVSoftmax, dict(sigma_b=float('nan')), V, r'sigma_b must be > 0, got nan'),
    case(NLTVSoftmax, dict(sigma_g='3'), T, r'sigma_g must be a real number'),
    case(NLTVSoftmax, dict(learnable_graph='yes'), T, r'learnable_graph must be True or False'),
    case(NLTVSoftmax, dict(feature_norm='l1'), V,
         r"feature_norm must be one of \(None, 'l2'\), got 'l1'"),
    case(NLTVSoftmax, dict(detach_graph=1), T, r'detach_graph must be True or False, got 1'),
    case(NLTVSoftmax, dict(chunk_size=0), V, r'chunk_size must be an integer >= 1, got 0'),
    case(NLTVSoftmax, dict(chunk_size=64.0), T, r'chunk_size must be an integer'),
    case(NLTVSoftmax, dict(graph='grid4'), V, r"graph must be one of \('knn', 'grid'\)"),
    case(NLTVSoftmax, dict(graph='grid', learnable_graph=True), V,
         r"learnable_graph=True needs graph='knn'"),
    case(NLTVSoftmax, dict(impl='fast'), V, r"impl must be one of \('auto', 'dense'"),
    case(NLTVSoftmax, dict(check_every=0), V, r'check_every must be an integer >= 1, got 0'),
    # ---- NonLocalHead (and the BaseDecodeHead arguments of every nlseg head)
    *head_base_cases(NonLocalHead),
    case(NonLocalHead, dict(init_std=-0.1), V, r'init_std must be >= 0, got -0\.1'),
    case(NonLocalHead, dict(mode='softmax'), V, NL_MODES_RE),
    case(NonLocalHead, dict(zero_init_output=None), T, r'zero_init_output must be True or False'),
    case(NonLocalHead, dict(impl='fast'), V, IMPL_RE),
    case(NonLocalHead, dict(reduction=0), V, r'reduction must be an integer >= 1, got 0'),
    case(NonLocalHead, dict(reduction='2'), T, r'reduction must be an integer'),
    case(NonLocalHead, dict(use_scale='True'), T, r'use_scale must be True or False'),
    case(NonLocalHead, dict(sub_sample=0), T, r'sub_sample must be True or False, got 0'),
    case(NonLocalHead, dict(num_convs=1), V, r'num_convs=2.*got num_convs=1'),
    case(NonLocalHead, dict(input_transform='multiple_select', in_channels=[4, 4],
                            in_index=[0, 1]), V,
         r"input_transform must be None or 'resize_concat', got 'multiple_select'"),
    # ---- ARNLHead
    *head_base_cases(ARNLHead),
    case(ARNLHead, dict(init_std=-0.1), V, r'init_std must be >= 0, got -0\.1'),
    case(ARNLHead, dict(lambda_act='relu'), V, r"lambda_act must be one of \(None, 'softplus'\)"),
    case(ARNLHead, dict(zero_init_output=1), T, r'zero_init_output must be True or False'),
    case(ARNLHead, dict(mode='concatenation'), V, r"does not support mode='concatenation'"),
    case(ARNLHead, dict(reduction=0), V, r'reduction must be an integer >= 1'),
    case(ARNLHead, dict(use_scale=None), T, r'use_scale must be True or False'),
    case(ARNLHead, dict(impl='sparse'), V, r"impl must be one of \('auto', 'dense', 'efficient'"),
    # ---- NSHead
    *head_base_cases(NSHead),
    case(NSHead, dict(init_std=-0.1), V, r'init_std must be >= 0, got -0\.1'),
    case(NSHead, dict(num_units=0), V, r'num_units must be an integer >= 1, got 0'),
    case(NSHead, dict(zero_init_output='False'), T, r'zero_init_output must be True or False'),
    case(NSHead, dict(mode='dot_product'), V, r"does not support mode='dot_product'"),
    case(NSHead, dict(mode='symmetric'), V, NS_MODES_RE.replace('softmax', 'symmetric')),
    case(NSHead, dict(reduction=2.0), T, r'reduction must be an integer'),
    case(NSHead, dict(use_scale=1), T, r'use_scale must be True or False'),
    case(NSHead, dict(impl='fast'), V, IMPL_RE),
    case(NSHead, dict(output_relu='yes', zero_init_output=False), T,
         r"output_relu must be True or False, got 'yes'"),
    case(NSHead, dict(output_relu=True), V, r'output_relu=True needs zero_init_output=False'),
    # ---- SNLHead, GSNLHead
    *head_base_cases(SNLHead),
    case(SNLHead, dict(init_std=-0.1), V, r'init_std must be >= 0, got -0\.1'),
    case(SNLHead, dict(zero_init_local=1, zero_init_output=False), T,
         r'zero_init_local must be True or False, got 1'),
    case(SNLHead, dict(affinity='laplacian'), V, AFFINITY_RE),
    case(SNLHead, dict(zero_init_output=0.0), T, r'zero_init_output must be True or False'),
    case(SNLHead, dict(reduction=0), V, r'reduction must be an integer >= 1'),
    case(SNLHead, dict(impl='fast'), V, IMPL_RE),
    case(SNLHead, dict(stage_num=0), V, r'stage_num must be an integer >= 1, got 0'),
    case(SNLHead, dict(output_relu=1), T, r'output_relu must be True or False, got 1'),
    case(SNLHead, dict(output_relu=True), V, r'output_relu=True needs zero_init_output=False'),
    *head_base_cases(GSNLHead),
    case(GSNLHead, dict(init_std=-0.1), V, r'init_std must be >= 0, got -0\.1'),
    case(GSNLHead, dict(zero_init_local=1, zero_init_output=False), T,
         r'zero_init_local must be True or False, got 1'),
    case(GSNLHead, dict(affinity=None), V, r"affinity must be one of \('symmetric', "),
    case(GSNLHead, dict(zero_init_output=[]), T, r'zero_init_output must be True or False'),
    case(GSNLHead, dict(reduction=1.0), T, r'reduction must be an integer'),
    case(GSNLHead, dict(impl=None), V, r'impl must be one of'),
    case(GSNLHead, dict(stage_num='3'), T, r"stage_num must be an integer >= 1, got '3'"),
    case(GSNLHead, dict(output_relu=None), T, r'output_relu must be True or False'),
    # ---- HamburgerHead
    *head_base_cases(HamburgerHead),
    case(HamburgerHead, dict(ham_channels=0), V, r'ham_channels must be an integer >= 1, got 0'),
    case(HamburgerHead, dict(ham_channels=8.5), T, r'ham_channels must be an integer'),
    case(HamburgerHead, dict(ham_type='SVD'), V, HAM_TYPE_RE),
    case(HamburgerHead, dict(ham_kwargs='MD_R=4'), T, r'ham_kwargs must be a dict or None'),
    case(HamburgerHead, dict(ham_kwargs=dict(MD_S=3)), V, r'divisible by MD_S \(3\)'),
    case(HamburgerHead, dict(ham_kwargs=dict(inv_t=-1)), V, r'inv_t must be > 0'),
    case(HamburgerHead, dict(trailing_relu=None), T, r'trailing_relu must be True or False'),
    case(HamburgerHead, dict(low_rank_upper=1), T, r'low_rank_upper must be True or False'),
    case(HamburgerHead, dict(impl='fast'), V, IMPL_RE),
    case(HamburgerHead, dict(lower_bread=None), T, r'lower_bread must be True or False'),
    case(HamburgerHead, dict(upper_bread='False'), T, r'upper_bread must be True or False'),
    case(HamburgerHead, dict(kernel_size=2), V, r'kernel_size must be odd .* got 2'),
    case(HamburgerHead, dict(kernel_size=0), V, r'kernel_size must be an integer >= 1, got 0'),
    case(HamburgerHead, dict(kernel_size=1.0), T, r'kernel_size must be an integer'),
    # ---- NLTVHead
    case(NLTVHead, dict(base_head='FCNHead'), T, r'base_head must be a head config dict or '
                                                 r'module'),
    case(NLTVHead, dict(base_head=nn.Conv2d(8, 3, 1)), T,
         r'base_head must build a BaseDecodeHead, got Conv2d'),
    case(NLTVHead, dict(nltv=[('k', 3)]), T, r'nltv must be a dict of NLTVSoftmax arguments'),
    case(NLTVHead, dict(nltv=dict(k=0)), V, r'k must be an integer >= 1, got 0'),
    case(NLTVHead, dict(nltv=dict(k=3, grad='implicit')), V,
         r"grad must be one of \('one_step', 'bptt'\)"),
    case(NLTVHead, dict(graph_source='pixels'), V,
         r"graph_source must be one of \('features', 'logits', 'image', 'grid'\), got 'pixels'"),
    case(NLTVHead, dict(graph_source='grid', nltv=dict(graph='knn')), V,
         r"graph_source='grid' and nltv graph='knn' disagree"),
    case(NLTVHead, dict(graph_source='image', image_index='last'), T,
         r"image_index must be an integer, got 'last'"),
    case(NLTVHead, dict(graph_source='image', image_mean=(0.5, 0.5)), V,
         r'image_mean must have 3 values'),
    case(NLTVHead, dict(graph_source='image', image_std=(58.0, -1.0, 57.0)), V,
         r'image_std\[1\] must be > 0, got -1\.0'),
    case(NLTVHead, dict(feature_module=3), T, r'feature_module must be the name \(str\)'),
    case(NLTVHead, dict(feature_module='nonexistent'), V,
         r"feature_module 'nonexistent' is not a submodule of FCNHead"),
    case(NLTVHead, dict(resize_features='yes'), T, r"resize_features must be True or False"),
]


@pytest.mark.parametrize('cls,kwargs,exc,match', CONSTRUCTOR_CASES)
def test_bad_constructor_argument(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        build(cls, **kwargs)
    assert type(info.value) in (ValueError, TypeError)


def nlseg_constructor_params(cls: type) -> set[str]:
    """Constructor parameters of ``cls``, following ``**kwargs`` into nlseg base classes
    (not into mmseg/mmengine ones: the BaseDecodeHead arguments have ``head_base_cases``)."""
    params: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith('nlseg') or '__init__' not in vars(klass):
            continue
        sig = inspect.signature(klass.__init__)
        params |= {n for n, p in sig.parameters.items()
                   if n != 'self' and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return params


#: parameters that accept anything valid for their consumer (no case can make them invalid
#: in nlseg): NLTVHead's init_cfg goes to mmengine's BaseModule.
UNCHECKED = {NLTVHead: {'init_cfg'},
             # deprecated and unused (warns): tests/test_models/test_blocks/test_non_local_api.py
             ARNLHead: {'temperature'}}


@pytest.mark.parametrize('cls', list(DEFAULTS), ids=lambda c: c.__name__)
def test_constructor_table_covers_every_argument(cls):
    covered = {k for c in CONSTRUCTOR_CASES if c.values[0] is cls for k in c.values[1]}
    missing = nlseg_constructor_params(cls) - covered - UNCHECKED.get(cls, set())
    assert not missing, f'{cls.__name__}: no bad-argument case for {sorted(missing)}'
    build(cls)  # the defaults of the table are valid


# ------------------------------------------------------------------------ bad inputs
class Module:
    """A module of the input table: how to build it, feed it an input x, and the message of
    a wrong channel count (expected C = 8, received 9)."""

    def __init__(self, build: Callable[[], nn.Module], head: bool = False,
                 channel_msg: str | None = None) -> None:
        self.build, self.head, self.channel_msg = build, head, channel_msg

    def inputs(self, x: Any) -> Any:
        """The argument of forward: heads get a list of levels and select inputs[1]
        (in_index=1); inputs[0] is a valid level of another shape."""
        return [torch.randn(2, 5, 3, 3, dtype=torch.float64), x] if self.head else x


BLOCK_CH = r'was built for in_channels=8 but received an input with 9 channels ' \
           r'\(shape \(2, 9, 5, 6\)\)'
HAM_CH = r'expects 8 input channels, got 9'
HEAD_CH = r'expects an input with 8 channels \(in_channels\) at inputs\[1\], received ' \
          r'shape \(2, 9, 5, 6\) \(9 channels\)'
HEAD_KW = dict(HEAD, in_index=1)

MODULES = {
    'NonLocalBlock': Module(lambda: NonLocalBlock(C), channel_msg=BLOCK_CH),
    'NonLocalBlock-gaussian-sub': Module(lambda: NonLocalBlock(C, mode='gaussian',
                                                               sub_sample=True),
                                         channel_msg=BLOCK_CH),
    'NonLocalBlock-concatenation-dense': Module(
        lambda: NonLocalBlock(C, mode='concatenation', impl='dense'), channel_msg=BLOCK_CH),
    'AdaptiveNonLocalBlock': Module(lambda: AdaptiveNonLocalBlock(C), channel_msg=BLOCK_CH),
    'NonLocalStage': Module(lambda: NonLocalStage(C), channel_msg=BLOCK_CH),
    'SNL': Module(lambda: SpectralNonLocalBlock(C), channel_msg=BLOCK_CH),
    'gSNL': Module(lambda: SpectralNonLocalBlock(C, generalized=True, norm_cfg=dict(type='BN')),
                   channel_msg=BLOCK_CH),
    'NMF2D': Module(lambda: NMF2D(C, MD_R=4), channel_msg=HAM_CH),
    'VQ2D': Module(lambda: VQ2D(C, MD_R=4), channel_msg=HAM_CH),
    'CD2D': Module(lambda: CD2D(C, MD_R=4, rand_init=False), channel_msg=HAM_CH),
    'Hamburger': Module(lambda: Hamburger(C, 8, ham_kwargs=dict(MD_R=4),
                                          norm_cfg=dict(type='BN')),
                        channel_msg=r'expects a \(B, 8, H, W\) input \(8 channels\), got shape '
                                    r'\(2, 9, 5, 6\) \(9 channels\)'),
    # logits of any class count: a "wrong channel count" does not exist for NLTVSoftmax
    'NLTVSoftmax': Module(lambda: NLTVSoftmax(k=3, test_iters=2)),
    'NonLocalHead': Module(lambda: NonLocalHead(**HEAD_KW), head=True, channel_msg=HEAD_CH),
    'ARNLHead': Module(lambda: ARNLHead(**HEAD_KW), head=True, channel_msg=HEAD_CH),
    'NSHead': Module(lambda: NSHead(**HEAD_KW), head=True, channel_msg=HEAD_CH),
    'SNLHead': Module(lambda: SNLHead(**HEAD_KW), head=True, channel_msg=HEAD_CH),
    'GSNLHead': Module(lambda: GSNLHead(**HEAD_KW), head=True, channel_msg=HEAD_CH),
    'HamburgerHead': Module(lambda: HamburgerHead(ham_channels=8, ham_kwargs=dict(MD_R=4),
                                                  **HEAD_KW), head=True, channel_msg=HEAD_CH),
    'NLTVHead(NonLocalHead)': Module(
        lambda: NLTVHead(dict(type='NonLocalHead', **HEAD_KW), nltv=dict(k=3, test_iters=2)),
        head=True, channel_msg=HEAD_CH),
    # the check of NLTVHead itself, in front of an mmseg head that checks nothing
    'NLTVHead(FCNHead)': Module(
        lambda: NLTVHead(fcn_base(in_index=1), nltv=dict(k=3, test_iters=2)),
        head=True, channel_msg=HEAD_CH),
}

SHAPE_4D = r'expects (input|inputs\[1\]|logits) to be a 4-D \(B, C, H, W\) tensor, got shape '
INPUT_CASES = {
    # name -> (input, exception, message)
    'wrong_channels': (lambda: torch.randn(2, 9, 5, 6), V, None),
    '3d': (lambda: torch.randn(C, 5, 6), V, SHAPE_4D + r'\(8, 5, 6\) \(3-D\)'),
    '5d': (lambda: torch.randn(1, 2, C, 5, 6), V, SHAPE_4D + r'\(1, 2, 8, 5, 6\) \(5-D\)'),
    'int64': (lambda: torch.ones(2, C, 5, 6, dtype=torch.long), T,
              r'expects a floating-point (input|inputs\[1\]|logits) \(dtype float16, bfloat16, '
              r'float32 or float64\), got dtype torch\.int64'),
    'uint8': (lambda: torch.ones(2, C, 5, 6, dtype=torch.uint8), T,
              r'floating-point.*got dtype torch\.uint8'),
    'bool': (lambda: torch.ones(2, C, 5, 6, dtype=torch.bool), T,
             r'floating-point.*got dtype torch\.bool'),
    'empty_batch': (lambda: torch.randn(0, C, 5, 6), V,
                    r'empty batch: got (input|inputs\[1\]|logits) of shape \(0, 8, 5, 6\)'),
    'empty_map': (lambda: torch.randn(2, C, 0, 6), V,
                  r'empty feature map: got (input|inputs\[1\]|logits) of shape \(2, 8, 0, 6\)'),
    'numpy': (lambda: np.zeros((2, C, 5, 6), np.float32), T,
              r'expects (input|inputs\[1\]|logits) to be a \(B, C, H, W\) torch\.Tensor, got '
              r'ndarray'),
}

CHEAP = {'dim', '__get__', 'size', 'is_floating_point', 'numel'}


class Spy(TorchFunctionMode):
    """Records every torch function call and every submodule forward of ``module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.functions: list[str] = []
        self.submodules: list[str] = []
        self.module = module
        self._handles = []

    def __enter__(self):
        for name, sub in self.module.named_modules():
            if name:
                self._handles.append(sub.register_forward_pre_hook(
                    lambda m, args, name=name: self.submodules.append(name)))
        return super().__enter__()

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.functions.append(getattr(func, '__name__', repr(func)))
        return func(*args, **(kwargs or {}))

    @property
    def heavy(self) -> list[str]:
        return [f for f in self.functions if f not in CHEAP] + \
            [f'submodule {s}' for s in self.submodules]


def input_table():
    for name, spec in MODULES.items():
        for input_name in INPUT_CASES:
            if input_name == 'wrong_channels' and spec.channel_msg is None:
                continue
            yield pytest.param(name, input_name, id=f'{name}-{input_name}')


@pytest.mark.parametrize('name,input_name', list(input_table()))
def test_bad_input_raises_clear_error_before_any_work(name, input_name):
    spec = MODULES[name]
    make_input, exc, match = INPUT_CASES[input_name]
    module = spec.build().eval()
    inputs = spec.inputs(make_input())
    spy = Spy(module)
    with spy, pytest.raises(exc) as info:
        module(inputs)
    msg = str(info.value)
    assert re.search(spec.channel_msg if match is None else match, msg), msg
    owner = 'NLTVHead' if name.startswith('NLTVHead') else type(module).__name__
    assert msg.startswith(owner), msg  # the message names the module that rejects the input
    assert not spy.heavy, f'work before the error: {spy.heavy}'


@pytest.mark.parametrize('name', list(MODULES))
def test_spy_sees_the_work_of_a_valid_forward(name):
    """The spy is not blind: a valid (float64) input runs submodules and torch ops."""
    spec = MODULES[name]
    module = spec.build().double().eval()
    inputs = spec.inputs(torch.rand(2, C, 5, 6, dtype=torch.float64))
    spy = Spy(module)
    with spy, torch.no_grad():
        out = module(inputs)
    assert torch.isfinite(out).all()
    assert spy.heavy and set(spy.functions) - CHEAP


@pytest.mark.parametrize('dtype', FLOAT_DTYPES)
def test_every_float_dtype_passes_the_check(dtype):
    check_feature_map(torch.zeros(1, 3, 1, 1, dtype=dtype), 'M', channels=3)


@pytest.mark.parametrize('name', [n for n in MODULES if MODULES[n].head])
def test_head_rejects_a_bare_tensor_and_a_missing_level(name):
    spec = MODULES[name]
    head = spec.build().eval()
    x = torch.randn(2, C, 5, 6)
    owner = 'NLTVHead' if name.startswith('NLTVHead') else type(head).__name__
    for inputs, exc, match in [
            (x, T, rf'{owner} expects inputs to be a list \(or tuple\) of \(B, C, H, W\) '
                   rf'feature maps, one per backbone level, got Tensor'),
            ([x], V, rf'{owner} selects inputs\[1\] \(in_index=1\) but received 1 feature '
                     rf'maps')]:
        spy = Spy(head)
        with spy, pytest.raises(exc, match=match):
            head(inputs)
        assert not spy.heavy, spy.heavy


def test_resize_concat_head_checks_every_level_and_the_channel_sum():
    head = NonLocalHead(in_channels=[4, 4], in_index=[0, 1], input_transform='resize_concat',
                        channels=4, num_classes=3).eval()
    ok = [torch.randn(1, 4, 6, 6), torch.randn(1, 4, 3, 3)]
    assert head(ok).shape == (1, 3, 6, 6)
    with pytest.raises(ValueError, match=r'expects an input with 8 channels \(in_channels, '
                                         r'summed over in_index=\[0, 1\]\).*\(7 channels\)'):
        head([ok[0], torch.randn(1, 3, 3, 3)])
    with pytest.raises(TypeError, match=r'floating-point inputs\[1\].*torch\.int32'):
        head([ok[0], ok[1].int()])
    with pytest.raises(ValueError, match=r'differ in batch size'):
        head([ok[0], torch.randn(2, 4, 3, 3)])


def test_multi_level_hamburger_head_checks_each_level():
    head = HamburgerHead(in_channels=[4, 6], in_index=[0, 1], channels=4, num_classes=3,
                         ham_channels=8, ham_kwargs=dict(MD_R=4)).eval()
    ok = [torch.randn(1, 4, 6, 6), torch.randn(1, 6, 3, 3)]
    assert head(ok).shape == (1, 3, 6, 6)
    with pytest.raises(ValueError, match=r'expects an input with 6 channels \(in_channels\) at '
                                         r'inputs\[1\], received shape \(1, 4, 3, 3\)'):
        head([ok[0], torch.randn(1, 4, 3, 3)])
    with pytest.raises(ValueError, match=r'empty batch: got inputs\[0\]'):
        head([torch.randn(0, 4, 6, 6), ok[1]])


@pytest.mark.parametrize('feats,exc,match', [
    (torch.randn(2, 4, 5), V, r'expects feats to be a 4-D \(B, C, H, W\) tensor'),
    (torch.ones(2, 4, 5, 6, dtype=torch.long), T, r'floating-point feats.*torch\.int64'),
    (torch.randn(0, 4, 5, 6), V, r'empty batch: got feats'),
    (torch.randn(1, 4, 5, 6), V, r'feats \(1, 4, 5, 6\) and logits \(2, 8, 5, 6\) must be '
                                 r'\(B, C, H, W\) maps of the same batch and spatial size'),
    (torch.randn(2, 4, 5, 7), V, r'same batch and spatial size'),
    ([[0.0]], T, r'expects feats to be a \(B, C, H, W\) torch\.Tensor, got list'),
])
def test_nltv_softmax_bad_feats_before_any_work(feats, exc, match):
    block = NLTVSoftmax(k=3)
    logits = torch.randn(2, C, 5, 6)
    spy = Spy(block)
    with spy, pytest.raises(exc, match=match):
        block(logits, feats)
    assert not spy.heavy, spy.heavy


def test_nltv_softmax_k_not_below_the_number_of_positions_before_any_work():
    block = NLTVSoftmax(k=6, feature_norm='l2')
    logits = torch.randn(1, 3, 2, 3)
    spy = Spy(block)
    with spy, pytest.raises(ValueError, match=r'k must be an int with 1 <= k < N = H \* W = 6, '
                                              r'got 6 \(input of shape \(1, 3, 2, 3\)\)'):
        block(logits)
    assert not spy.heavy, spy.heavy


# ------------------------------------------------------------------------ the helpers
@pytest.mark.parametrize('call,exc,match', [
    (lambda: check_int('n', True), T, r'n must be an integer >= 1, got True \(bool\)'),
    (lambda: check_int('n', 3.0), T, r'got 3\.0 \(float\)'),
    (lambda: check_int('n', -1, min_value=0), V, r'n must be an integer >= 0, got -1'),
    (lambda: check_real('x', False, low=0), T, r'x must be a real number \(>= 0\), got False'),
    (lambda: check_real('x', 1.0, low=1, low_open=True), V, r'x must be > 1, got 1\.0'),
    (lambda: check_real('x', 1.0, 0, 1, high_open=True), V, r'x must be in \[0, 1\), got 1\.0'),
    (lambda: check_real('x', math.nan), V, r'x must not be NaN'),
    (lambda: check_bool('flag', 'False'), T, r"flag must be True or False, got 'False' \(str\)"),
    (lambda: check_choice('mode', True, (1, 2)), V, r'mode must be one of \(1, 2\), got True'),
    (lambda: check_choice('mode', ['a'], ('a',)), V, r"mode must be one of \('a',\), got \['a'\]"),
])
def test_helpers_reject(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_helpers_accept_and_convert():
    assert check_int('n', np.int64(3)) == 3 and type(check_int('n', np.int64(3))) is int
    assert check_int('seed', 0, min_value=0) == 0
    assert check_real('x', np.float32(0.5), 0, 1) == 0.5
    assert check_real('x', math.inf, low=0) == math.inf
    assert check_bool('flag', False) is False
    check_choice('act', None, (None, 'softplus'))
    check_choice('mode', 'a', ('a', 'b'))
