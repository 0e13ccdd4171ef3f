"""SNLHead and GSNLHead: FCNHead with the (generalised) spectral non-local block."""
from __future__ import annotations

from mmseg.registry import MODELS

from nlseg.models.blocks.spectral_non_local import SpectralNonLocalBlock
from .context_fcn_head import ContextFCNHead

__all__ = ['SNLHead', 'GSNLHead']


@MODELS.register_module()
class SNLHead(ContextFCNHead):
    """SNL head (Zhu et al.): ``snl_block`` (:class:`SpectralNonLocalBlock`) between
    convs[0] and convs[1].

    Args:
        reduction, affinity, impl: of :class:`SpectralNonLocalBlock`.
        stage_num: units sharing one affinity of the block input (the SNL paper's Table 4;
            1: one block, today's state_dict keys).
        output_relu: ReLU after each unit's output norm, as the authors' codes (needs
            ``zero_init_output=False``).
        zero_init_local: start as the NL block (w1, and w3 of gSNL, zero at init; needs
            ``zero_init_output=False``): see :class:`SpectralNonLocalBlock`.
        **kwargs: of ``FCNHead``/``BaseDecodeHead`` (num_convs is fixed to 2).
    """

    block_name = 'snl_block'
    generalized = False

    def __init__(self, reduction: int = 2, affinity: str = 'symmetric', impl: str = 'auto',
                 stage_num: int = 1, output_relu: bool = False, zero_init_local: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.affinity = affinity
        self.snl_block = SpectralNonLocalBlock(
            in_channels=self.channels, reduction=reduction, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, impl=impl, generalized=self.generalized,
            affinity=affinity, zero_init_output=self.zero_init_output, stage_num=stage_num,
            output_relu=output_relu, init_std=self.init_std,
            zero_init_local=zero_init_local)


@MODELS.register_module()
class GSNLHead(SNLHead):
    """gSNL head: :class:`SNLHead` with the generalised block (w3 (2A - I) term)."""

    generalized = True
