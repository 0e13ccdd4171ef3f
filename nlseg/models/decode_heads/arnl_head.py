"""ARNLHead: FCNHead with the adaptive-regularisation non-local block (ARNLB)."""
from __future__ import annotations

import warnings
from typing import Optional

from mmseg.registry import MODELS

from nlseg.models.blocks.non_local import AdaptiveNonLocalBlock
from .context_fcn_head import ContextFCNHead

__all__ = ['ARNLHead']


@MODELS.register_module()
class ARNLHead(ContextFCNHead):
    """ARNLB head (Sun et al.), accepting the authors' config keys.

    Args:
        reduction, use_scale, mode, lambda_act, impl: of :class:`AdaptiveNonLocalBlock`
            (the authors' defaults: reduction 2, use_scale False, embedded_gaussian).
        temperature: deprecated and unused, as in the authors' code (their head takes
            ``temperature=0.05`` and never reads it): the temperature is the learned
            per-position lambda (``nl_block.lambda_x``, its activation set by
            ``lambda_act``). Passing it warns (DeprecationWarning); remove it from configs.
        **kwargs: of ``FCNHead``/``BaseDecodeHead`` (num_convs is fixed to 2).
    """

    block_name = 'nl_block'

    def __init__(self, reduction: int = 2, use_scale: bool = False,
                 mode: str = 'embedded_gaussian', temperature: Optional[float] = None,
                 lambda_act: Optional[str] = None, impl: str = 'auto', **kwargs) -> None:
        if temperature is not None:
            warnings.warn('ARNLHead: temperature is unused (as in the authors\' code) and '
                          'deprecated: the temperature is the learned per-position lambda '
                          '(nl_block.lambda_x; lambda_act sets its activation). Remove '
                          'temperature from the config.', DeprecationWarning, stacklevel=2)
        super().__init__(**kwargs)
        self.reduction = reduction
        self.use_scale = use_scale
        self.mode = mode
        self.nl_block = AdaptiveNonLocalBlock(
            in_channels=self.channels, reduction=reduction, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, impl=impl, use_scale=use_scale, mode=mode,
            lambda_act=lambda_act, zero_init_output=self.zero_init_output,
            std=self.init_std)
