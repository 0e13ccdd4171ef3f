"""ARNLHead: FCNHead with the adaptive-regularisation non-local block (ARNLB)."""
from __future__ import annotations

from typing import Optional

from mmseg.registry import MODELS

from nlseg.models.blocks.non_local import AdaptiveNonLocalBlock
from nlseg.validation import check_real
from .context_fcn_head import ContextFCNHead

__all__ = ['ARNLHead']


@MODELS.register_module()
class ARNLHead(ContextFCNHead):
    """ARNLB head (Sun et al.), accepting the authors' config keys.

    Args:
        reduction, use_scale, mode, lambda_act, impl: of :class:`AdaptiveNonLocalBlock`
            (the authors' defaults: reduction 2, use_scale False, embedded_gaussian).
        temperature: accepted for compatibility with the authors' configs and UNUSED, as
            in their code (the temperature is the learned per-position lambda).
        **kwargs: of ``FCNHead``/``BaseDecodeHead`` (num_convs is fixed to 2).
    """

    block_name = 'nl_block'

    def __init__(self, reduction: int = 2, use_scale: bool = False,
                 mode: str = 'embedded_gaussian', temperature: float = 0.05,
                 lambda_act: Optional[str] = None, impl: str = 'auto', **kwargs) -> None:
        check_real('temperature', temperature)
        super().__init__(**kwargs)
        self.reduction = reduction
        self.use_scale = use_scale
        self.mode = mode
        self.temperature = temperature  # unused, see the docstring
        self.nl_block = AdaptiveNonLocalBlock(
            in_channels=self.channels, reduction=reduction, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, impl=impl, use_scale=use_scale, mode=mode,
            lambda_act=lambda_act, zero_init_output=self.zero_init_output)
