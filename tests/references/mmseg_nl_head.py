"""mmseg's ``NLHead`` forward (open-mmlab/mmsegmentation,
``mmseg/models/decode_heads/nl_head.py``), which the ARNLB and SNL authors' heads copy, with
the context block under an attribute name of the subclass's choosing."""
import torch
from mmseg.models.decode_heads.fcn_head import FCNHead


class AuthorsNLStyleHead(FCNHead):
    """mmseg NLHead's forward (which both authors' heads copy) with the context block under
    the attribute ``self.block_name``."""

    block_name = 'nl_block'

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        output = self.convs[1](getattr(self, self.block_name)(self.convs[0](x)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
