"""NonLocalHead: mmseg's NLHead with the exact memory-lean non-local block."""
from __future__ import annotations

from mmseg.registry import MODELS

from nlseg.models.blocks.non_local import NonLocalBlock
from .context_fcn_head import ContextFCNHead

__all__ = ['NonLocalHead']


@MODELS.register_module()
class NonLocalHead(ContextFCNHead):
    """Drop-in for mmseg's ``NLHead`` (Wang et al. 2018): same constructor, submodules
    (``nl_block`` = :class:`NonLocalBlock` with mmcv's ``NonLocal2d`` names) and output, so
    NLHead checkpoints load unchanged; ``impl='auto'`` never forms the N x N affinity.

    Args:
        reduction, use_scale, mode, sub_sample, impl: of :class:`NonLocalBlock`.
        **kwargs: of ``FCNHead``/``BaseDecodeHead`` (num_convs is fixed to 2).
    """

    block_name = 'nl_block'

    def __init__(self, reduction: int = 2, use_scale: bool = True,
                 mode: str = 'embedded_gaussian', sub_sample: bool = False,
                 impl: str = 'auto', **kwargs) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.use_scale = use_scale
        self.mode = mode
        self.nl_block = NonLocalBlock(
            in_channels=self.channels, reduction=reduction, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, impl=impl, use_scale=use_scale, mode=mode,
            sub_sample=sub_sample, zero_init_output=self.zero_init_output,
            std=self.init_std)
