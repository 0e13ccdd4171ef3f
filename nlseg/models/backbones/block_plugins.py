"""nlseg's feature-to-feature blocks as registered model types: built by name from a config,
as mmseg ResNet ``plugins=`` entries and as ``inserts=`` of the ResNets in
:mod:`.resnet_with_inserts`.

Registered (each maps a (B, C, H, W) feature map to one of the same shape, C -> C):
``NonLocalBlock``, ``AdaptiveNonLocalBlock``, ``NonLocalStage``, ``SpectralNonLocalBlock`` and
``Hamburger``. ``NLTVSoftmax`` is not: it turns class logits into probabilities.

    from mmseg.registry import MODELS
    block = MODELS.build(dict(type='NonLocalBlock', in_channels=256, reduction=2))

    # mmseg ResNet-50 with an SNL block after conv3 of every res3 and res4 bottleneck
    backbone = dict(type='ResNetV1c', depth=50, plugins=[dict(
        cfg=dict(type='SpectralNonLocalBlock', reduction=2),
        stages=(False, True, True, False), position='after_conv3')])

How a plugin is found: mmseg's ResNet builds each plugin with mmcv's ``build_plugin_layer``,
which looks its type up in mmengine's root ``MODELS`` switched to the current default scope:
mmseg's ``MODELS`` when ``default_scope='mmseg'``, the root registry itself when no default
scope is set. The blocks are therefore registered in both registries (the same class under the
same name), so a plugin config works either way. ``build_plugin_layer`` passes
``in_channels`` (the bottleneck's channels at that position: ``planes`` after conv1/conv2,
``planes * 4`` after conv3) and names the module after the snake case of the class name
(``layer3.0.non_local_block``, ``layer3.0.spectral_non_local_block``, ...; add a ``postfix``
to tell two plugins of one type at one position apart). mmseg's ``BasicBlock`` (ResNet-18/34)
takes no plugins; :class:`~nlseg.models.backbones.ResNetWithInserts` works with every depth.
"""
from __future__ import annotations

import warnings

from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import Registry
from mmseg.registry import MODELS

from nlseg.models.blocks import AdaptiveNonLocalBlock, Hamburger, NonLocalBlock, \
    NonLocalStage, SpectralNonLocalBlock

__all__ = ['PLUGIN_BLOCKS', 'register_plugin_blocks']

#: the C -> C blocks registered as model types (mmseg's MODELS and mmengine's root MODELS).
PLUGIN_BLOCKS = (NonLocalBlock, AdaptiveNonLocalBlock, NonLocalStage, SpectralNonLocalBlock,
                 Hamburger)


def _register(registry: Registry, cls: type, on_clash: str) -> None:
    """Register ``cls`` under its class name in ``registry`` itself (not a parent); a second
    call is a no-op. A different class already under that name raises a KeyError
    (``on_clash='raise'``) or is left in place with a warning (``'warn'``)."""
    name = cls.__name__
    present = registry.module_dict.get(name)
    if present is cls:
        return
    if present is not None:
        message = (f'{name} is already registered in the {registry.scope!r} MODELS registry as '
                   f'{present.__module__}.{present.__qualname__}')
        if on_clash == 'raise':
            raise KeyError(message + f'; nlseg cannot register {cls.__module__}.{name} there')
        warnings.warn(message + f': nlseg leaves it, so a plugin type {name!r} built without '
                      "default_scope='mmseg' gets that class (use default_scope='mmseg' or "
                      f"type='mmseg.{name}')", stacklevel=3)
        return
    registry.register_module(module=cls)


def register_plugin_blocks() -> None:
    """Register :data:`PLUGIN_BLOCKS` in mmseg's ``MODELS`` and in mmengine's root ``MODELS``
    (see the module docstring); idempotent. Run on ``import nlseg``."""
    for cls in PLUGIN_BLOCKS:
        _register(MODELS, cls, on_clash='raise')
        _register(ROOT_MODELS, cls, on_clash='warn')


register_plugin_blocks()
