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
        **kwargs: of ``FCNHead``/``BaseDecodeHead`` (num_convs is fixed to 2).
    """

    block_name = 'snl_block'
    generalized = False

    def __init__(self, reduction: int = 2, affinity: str = 'symmetric', impl: str = 'auto',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.affinity = affinity
        self.snl_block = SpectralNonLocalBlock(
            in_channels=self.channels, reduction=reduction, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, impl=impl, generalized=self.generalized,
            affinity=affinity, zero_init_output=self.zero_init_output)


@MODELS.register_module()
class GSNLHead(SNLHead):
    """gSNL head: :class:`SNLHead` with the generalised block (w3 (2A - I) term)."""

    generalized = True
