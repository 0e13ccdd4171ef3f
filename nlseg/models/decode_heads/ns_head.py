"""NSHead: FCNHead with a nonlocal stage (NS, Tao et al. 2018)."""
from __future__ import annotations

from mmseg.registry import MODELS

from nlseg.models.blocks.non_local_stage import NonLocalStage
from .context_fcn_head import ContextFCNHead

__all__ = ['NSHead']


@MODELS.register_module()
class NSHead(ContextFCNHead):
    """NS head: ``ns_stage`` (:class:`NonLocalStage`) between convs[0] and convs[1].

    Args:
        reduction, use_scale, mode, num_units, impl, output_relu: of :class:`NonLocalStage`
            (``mode``: 'embedded_gaussian', 'gaussian', or the symmetric shared-embedding
            kernels 'symmetric_embedded_gaussian', 'symmetric_relu_dot' of Tao et al.
            eq. 12-13; ``output_relu``: the public code's ReLU after each unit's norm).
        **kwargs: of ``FCNHead``/``BaseDecodeHead`` (num_convs is fixed to 2).
    """

    block_name = 'ns_stage'

    def __init__(self, reduction: int = 2, use_scale: bool = True,
                 mode: str = 'embedded_gaussian', num_units: int = 2, impl: str = 'auto',
                 output_relu: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.use_scale = use_scale
        self.mode = mode
        self.ns_stage = NonLocalStage(
            in_channels=self.channels, reduction=reduction, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, impl=impl, num_units=num_units, use_scale=use_scale,
            mode=mode, zero_init_output=self.zero_init_output, init_std=self.init_std,
            output_relu=output_relu)
