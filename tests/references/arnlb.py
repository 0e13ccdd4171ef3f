"""The ARNLB authors' code, re-implemented: repo sunhuichao/ARNLB,
``mmseg/models/decode_heads/arnl_head.py`` (``ARNLHead``, an FCNHead(num_convs=2) whose block
``NewNonLocal2d`` sits under the misspelt attribute ``non_blocak``).

Left out: the authors' permute of phi before the matmul (a shape bug: it only runs when H*W
equals C') and their hard-coded ``.cuda()``; neither touches the weights.
"""
import torch
from mmcv.cnn import NonLocal2d

from tests.references.mmseg_nl_head import AuthorsNLStyleHead


class AuthorsStyleARNL(NonLocal2d):
    """ARNLB written as the authors do it (NewNonLocal2d derives from mmcv's NonLocal2d):
    lambda = Conv2d(C -> 1, 3x3)(x) multiplies the pairwise logits of NonLocal2d's mode, the
    rest (use_scale on embedded_gaussian only, gaussian on x itself) is mmcv's. Written with
    phi as mmcv lays it out (the authors' extra permute, a shape bug, is left out)."""

    def __init__(self, in_channels, **kwargs):
        super().__init__(in_channels, **kwargs)
        self.lambda_x = torch.nn.Conv2d(in_channels, 1, 3, padding=1)

    def forward(self, x):
        self._lam = self.lambda_x(x).flatten(2).transpose(1, 2)  # (B, N, 1)
        return super().forward(x)

    def gaussian(self, theta_x, phi_x):
        return (self._lam * torch.matmul(theta_x, phi_x)).softmax(dim=-1)

    def embedded_gaussian(self, theta_x, phi_x):
        w = self._lam * torch.matmul(theta_x, phi_x)
        if self.use_scale:
            w = w / theta_x.shape[-1] ** 0.5
        return w.softmax(dim=-1)


class ARNLBHead(AuthorsNLStyleHead):
    """The ARNLB authors' ``ARNLHead``: NLHead's structure with their ``NewNonLocal2d``
    under the misspelt ``self.non_blocak``. The block is ``AuthorsStyleARNL`` (mmcv's
    NonLocal2d plus the 3x3 lambda conv, written with phi as mmcv lays it out: the authors'
    permute, a crash bug, left out; no ``.cuda()``)."""

    block_name = 'non_blocak'

    def __init__(self, reduction=2, use_scale=False, mode='embedded_gaussian',
                 temperature=0.05, **kwargs):
        super().__init__(num_convs=2, **kwargs)
        self.temperature = temperature  # unused, as in the authors' code
        self.non_blocak = AuthorsStyleARNL(self.channels, reduction=reduction,
                                           use_scale=use_scale, conv_cfg=self.conv_cfg,
                                           norm_cfg=self.norm_cfg, mode=mode)
