"""mmseg ResNets with blocks inserted between their residual blocks, where the papers put them.

``ResNetWithInserts``, ``ResNetV1cWithInserts`` and ``ResNetV1dWithInserts`` (mmseg
``MODELS``) are mmseg's ``ResNet``, ``ResNetV1c`` and ``ResNetV1d`` (subclasses, every argument
of theirs unchanged) plus ``inserts``, a list of

    dict(stage=2, before=-1, block=dict(type='SpectralNonLocalBlock', reduction=2))

* ``stage``: 0-based ResNet stage, 0 = res2, 1 = res3, 2 = res4, 3 = res5 (``layer1`` ..
  ``layer4``), below ``num_stages``.
* ``before``: index of the residual block of that stage the block goes in front of, in
  ``[-n, n - 1]`` for a stage of n blocks (negative counts from the end, so -1 is "right before
  the last residual block"); ``None`` (or no ``before`` key) puts it after the last block.
* ``block``: config of a module from mmseg's ``MODELS`` (any C -> C block: nlseg's, mmcv's
  ``NonLocal2d``, ...). The backbone fills in ``in_channels`` = the stage's output channels,
  ``planes * expansion`` (ResNet-50: 256, 512, 1024, 2048; ResNet-18: 64, 128, 256, 512).

Several inserts per stage are allowed; two at one position (``before=-1`` and ``before=5`` in
a 6-block stage are one position) or a position outside the ranges above raise a ValueError
naming the entry and the accepted range.

Names and checkpoints: the residual blocks keep their names and the inserted block before
block i of stage s is ``layer{s+1}.insert_before_{i}`` (after the last block:
``layer{s+1}.insert_after_{n-1}``): ``layer3.5.conv1.weight`` stays ``layer3.5.conv1.weight``
next to ``layer3.insert_before_5.theta.conv.weight``. open-mmlab's ResNet checkpoints and
mmseg's converted weights therefore load unchanged (``pretrained=...`` or
``init_cfg=dict(type='Pretrained', ...)``): only the insert keys are missing from them. Note
that integer indexing of a stage (``layer3[5]``) counts the inserted blocks too, as in any
``nn.Sequential``; :meth:`ResNetWithInserts.inserted_blocks` lists the inserts by name.

Training switches of the ResNet cover the inserted blocks:

* ``frozen_stages=k`` freezes the inserted blocks of stages 0 .. k-1 too (eval mode,
  ``requires_grad=False``): they belong to those stages' ``layer`` modules.
* ``norm_eval=True`` keeps every BatchNorm of the backbone in eval mode, those of the inserted
  blocks included.
* ``with_cp=True`` checkpoints the inserted blocks as it does the residual blocks (activations
  recomputed in the backward pass; a BatchNorm in a block then updates its running statistics
  twice per step, as in mmcv's checkpointed bottlenecks).
* ``init_weights()``: the ResNet's initialisers (Kaiming conv / constant norm without
  ``pretrained``) run over every submodule, then each inserted block's own ``init_weights()``
  restores its initialisation (a zero-initialised output: identity at the start), then a
  ``Pretrained`` checkpoint loads. A block without ``init_weights`` (``Hamburger``) keeps the
  ResNet's initialisers, which match ConvModule's own (Kaiming fan-out conv, BN weight 1).

Examples (ResNet-50, output stride 8, mmseg's ``_base_/models/*_r50-d8.py`` backbone)::

    # NL paper (Wang et al. 2018, table 2d), 5 blocks: 2 in res3 and 3 in res4, after every
    # other residual block (after blocks 1, 3 of res3 and 1, 3, 5 of res4)
    nl = dict(type='NonLocalBlock', reduction=2, mode='embedded_gaussian')
    backbone = dict(
        type='ResNetV1cWithInserts', depth=50, dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
        contract_dilation=True, norm_cfg=dict(type='SyncBN', requires_grad=True),
        inserts=[dict(stage=1, before=2, block=nl), dict(stage=1, before=None, block=nl),
                 dict(stage=2, before=2, block=nl), dict(stage=2, before=4, block=nl),
                 dict(stage=2, before=None, block=nl)])

    # SNL paper, appendix C (VOC 2012, ResNet-50 DeepLab), and the NL paper's single block:
    # one block right before the last residual block of res4
    backbone = dict(
        type='ResNetV1cWithInserts', depth=50, dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
        contract_dilation=True,
        inserts=[dict(stage=2, before=-1,
                      block=dict(type='SpectralNonLocalBlock', reduction=2))])
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import Sequential
from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d
from mmseg.registry import MODELS

from nlseg.validation import check_int

__all__ = ['StageWithInserts', 'InsertedBlocksMixin', 'ResNetWithInserts',
           'ResNetV1cWithInserts', 'ResNetV1dWithInserts', 'check_inserts']

INSERT_KEYS = ('stage', 'before', 'block')
INSERT_PREFIX = 'insert_'


class StageWithInserts(Sequential):
    """One ResNet stage: its residual blocks (named ``'0'`` .. ``'n-1'`` as in the plain
    stage) with inserted blocks (``insert_before_{i}``, ``insert_after_{n-1}``) between them,
    run in order. ``with_cp`` checkpoints the inserted blocks when the input needs a
    gradient (the residual blocks checkpoint themselves)."""

    def __init__(self, modules: 'OrderedDict[str, nn.Module]', with_cp: bool = False) -> None:
        super().__init__(modules)
        self.with_cp = with_cp

    def inserted_names(self) -> list[str]:
        """Names of the inserted blocks, in forward order."""
        return [name for name in self._modules if name.startswith(INSERT_PREFIX)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, module in self._modules.items():
            if self.with_cp and x.requires_grad and name.startswith(INSERT_PREFIX):
                x = cp.checkpoint(module, x, use_reentrant=False)
            else:
                x = module(x)
        return x


def _entry_name(index: int) -> str:
    return f'inserts[{index}]'


def check_inserts(inserts: Any) -> list[dict]:
    """The structure of ``inserts`` (positions are checked against the built ResNet):
    None or a list/tuple of dicts with keys ``stage`` (int >= 0), ``before`` (int or None,
    optional) and ``block`` (a config dict with a ``type``). Returns copies with ``before``
    filled in. TypeError/ValueError naming the entry otherwise."""
    if inserts is None:
        return []
    if not isinstance(inserts, (list, tuple)):
        raise TypeError(f'inserts must be a list of dicts (stage, before, block) or None, got '
                        f'{inserts!r} ({type(inserts).__name__})')
    checked = []
    for k, entry in enumerate(inserts):
        where = _entry_name(k)
        if not isinstance(entry, dict):
            raise TypeError(f'{where} must be a dict with keys {INSERT_KEYS}, got {entry!r} '
                            f'({type(entry).__name__})')
        unknown = sorted(set(entry) - set(INSERT_KEYS))
        if unknown:
            raise ValueError(f'{where} has unknown keys {unknown}; accepted keys: '
                             f'{INSERT_KEYS} (before is optional)')
        for key in ('stage', 'block'):
            if key not in entry:
                raise ValueError(f'{where} needs the key {key!r}; accepted keys: {INSERT_KEYS}')
        check_int(f'{where}.stage', entry['stage'], min_value=0)
        before = entry.get('before')
        if before is not None:
            check_int(f'{where}.before', before, min_value=None)
        block = entry['block']
        if not isinstance(block, dict) or 'type' not in block:
            raise TypeError(f"{where}.block must be a config dict with a 'type' (a module of "
                            f"mmseg's MODELS), got {block!r}")
        checked.append(dict(stage=int(entry['stage']), before=before, block=dict(block)))
    return checked


class InsertedBlocksMixin:
    """Adds ``inserts`` to an mmseg ResNet (module docstring). Put it first in the bases:
    ``class X(InsertedBlocksMixin, ResNetV1c)``."""

    def __init__(self, *args, inserts: Optional[Sequence[dict]] = None, **kwargs) -> None:
        specs = check_inserts(inserts)
        super().__init__(*args, **kwargs)
        self.inserts = self._insert_blocks(specs)
        self._freeze_stages()  # the ResNet froze its stages before the inserts existed

    def stage_channels(self, stage: int) -> int:
        """Output channels of ResNet stage ``stage`` (0-based): planes * expansion."""
        return self.block.expansion * self.base_channels * 2 ** stage

    def _position(self, k: int, stage: int, before: Optional[int]) -> int:
        """``before`` as an index in [0, n] (n: after the last block) for stage ``stage``."""
        where = _entry_name(k)
        num_stages = len(self.res_layers)
        if stage >= num_stages:
            raise ValueError(f'{where}.stage must be in [0, {num_stages - 1}] (0 = res2, '
                             f'1 = res3, 2 = res4, 3 = res5) for this ResNet of '
                             f'{num_stages} stages, got {stage}')
        n = len(getattr(self, self.res_layers[stage]))
        if before is None:
            return n
        if not -n <= before <= n - 1:
            raise ValueError(f'{where}.before must be None (after the last block) or in '
                             f'[{-n}, {n - 1}] for stage {stage} ({self.res_layers[stage]}, '
                             f'{n} residual blocks), got {before}')
        return before % n

    def _insert_blocks(self, specs: list[dict]) -> list[dict]:
        """Build every insert, rebuild the stages that get one as :class:`StageWithInserts`;
        returns the resolved specs (stage, before as an index in [0, n], name, block cfg)."""
        resolved: dict[tuple[int, int], dict] = {}
        for k, spec in enumerate(specs):
            stage = spec['stage']
            position = self._position(k, stage, spec['before'])
            if (stage, position) in resolved:
                first = resolved[(stage, position)]['entry']
                raise ValueError(f'{_entry_name(k)} and {_entry_name(first)} insert two blocks at '
                                 f'the same position (stage {stage}, before '
                                 f'{spec["before"]!r} = residual block {position}); '
                                 'positions must be distinct')
            channels = self.stage_channels(stage)
            block_cfg = spec['block']
            given = block_cfg.get('in_channels', channels)
            if given != channels:
                raise ValueError(f'{_entry_name(k)}.block has in_channels={given!r}, but stage '
                                 f'{stage} outputs {channels} channels: leave in_channels out '
                                 '(the backbone fills it in)')
            resolved[(stage, position)] = dict(
                entry=k, stage=stage, position=position,
                block=dict(block_cfg, in_channels=channels))
        for stage in sorted({s for s, _ in resolved}):
            layer_name = self.res_layers[stage]
            residual_blocks = list(getattr(self, layer_name).children())
            n = len(residual_blocks)
            modules: 'OrderedDict[str, nn.Module]' = OrderedDict()
            for i in range(n + 1):
                spec = resolved.get((stage, i))
                if spec is not None:
                    spec['name'] = f'insert_before_{i}' if i < n else f'insert_after_{n - 1}'
                    modules[spec['name']] = MODELS.build(spec['block'])
                if i < n:
                    modules[str(i)] = residual_blocks[i]
            setattr(self, layer_name, StageWithInserts(modules, with_cp=self.with_cp))
        return [dict(stage=s['stage'], before=s['position'], name=s['name'], block=s['block'])
                for s in sorted(resolved.values(), key=lambda s: (s['stage'], s['position']))]

    def inserted_blocks(self) -> 'OrderedDict[str, nn.Module]':
        """The inserted blocks by qualified name (``'layer3.insert_before_5'``), in forward
        order."""
        out: 'OrderedDict[str, nn.Module]' = OrderedDict()
        for layer_name in self.res_layers:
            layer = getattr(self, layer_name)
            if isinstance(layer, StageWithInserts):
                for name in layer.inserted_names():
                    out[f'{layer_name}.{name}'] = getattr(layer, name)
        return out


@MODELS.register_module()
class ResNetWithInserts(InsertedBlocksMixin, ResNet):
    """mmseg's ``ResNet`` (every argument) plus ``inserts`` (module docstring)."""


@MODELS.register_module()
class ResNetV1cWithInserts(InsertedBlocksMixin, ResNetV1c):
    """mmseg's ``ResNetV1c`` (deep stem) plus ``inserts`` (module docstring)."""


@MODELS.register_module()
class ResNetV1dWithInserts(InsertedBlocksMixin, ResNetV1d):
    """mmseg's ``ResNetV1d`` (deep stem, average-pool downsampling) plus ``inserts``
    (module docstring)."""
