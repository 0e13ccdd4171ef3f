"""The SNL authors' code, re-implemented: repo zh460045050/SNL_ICCV2021.

* ``SNLAuthorsHead``: the segmentation head of ``SNL-MMSeg/snl_head.py`` (an
  FCNHead(num_convs=2) with the SNL stage between ``convs[0]`` and ``convs[1]``), whose
  block comes from ``nls/`` (``nls/basic.py``); its units (``SegmentationSNLUnit``) subtract
  the W2 term.
* ``AuthorsSNLUnit``, ``AuthorsSNLStage``: the SNL/gSNL unit and stage as the authors'
  classification code writes them, W2 term added (that file's path is not recorded in this
  project).

Left out: bugs that do not touch the weights (a missing ``import torch.nn as nn``, the
in-place ``att += att.permute(0, 2, 1)``, a hard-coded ``torch.eye(N).cuda()``); the
symmetrisation is written out of place.
"""
import torch
import torch.nn as nn

from tests.references.mmseg_nl_head import AuthorsNLStyleHead


class AuthorsSNLUnit(nn.Module):
    """SNL_ICCV2021's SNL/gSNL unit, written as their forward: bias-free 1x1 convs, the
    affinity ``att`` given by the stage, BN then ReLU, then the residual."""

    def __init__(self, inplanes, planes, generalized):
        super().__init__()
        self.generalized = generalized
        self.g = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.w_1 = nn.Conv2d(planes, inplanes, kernel_size=1, bias=False)
        self.w_2 = nn.Conv2d(planes, inplanes, kernel_size=1, bias=False)
        if generalized:
            self.w_3 = nn.Conv2d(planes, inplanes, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(inplanes)

    def forward(self, x, att):
        residual = x
        g = self.g(x)
        b, c, h, w = g.size()
        g = g.view(b, c, -1).permute(0, 2, 1)
        x_1 = g.permute(0, 2, 1).contiguous().view(b, c, h, w)
        out = self.w_1(x_1)
        x_2 = att.bmm(g)
        x_2 = x_2.permute(0, 2, 1).contiguous().view(b, c, h, w)
        out = out + self.w_2(x_2)
        if self.generalized:
            out = out + self.w_3(2 * x_2 - x_1)
        out = self.bn(out)
        out = torch.relu(out)
        out = out + residual
        return out


class AuthorsSNLStage(nn.Module):
    """SNL_ICCV2021's stage: t/p from the stage input, the 'dot' kernel
    att = relu(t) relu(p)^T, att = (att + att^T) / 2, D^-1/2 att D^-1/2 with
    ``d[d != 0] = sqrt(1 / d[d != 0])``, then ``stage_num`` units on that one att."""

    def __init__(self, inplanes, planes, stage_num, generalized):
        super().__init__()
        self.t = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.p = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.layers = nn.ModuleList(
            [AuthorsSNLUnit(inplanes, planes, generalized) for _ in range(stage_num)])

    def dot_kernel(self, x):
        t = self.t(x)
        p = self.p(x)
        b, c, h, w = t.size()
        t = t.view(b, c, -1).permute(0, 2, 1)
        p = p.view(b, c, -1)
        att = torch.bmm(torch.relu(t), torch.relu(p))
        att = (att + att.permute(0, 2, 1)) / 2
        d = torch.sum(att, dim=2)
        d[d != 0] = torch.sqrt(1.0 / d[d != 0])
        att = att * d.unsqueeze(1) * d.unsqueeze(2)
        return att

    def forward(self, x):
        att = self.dot_kernel(x)
        out = x
        for layer in self.layers:
            out = layer(out, att)
        return out


class SegmentationSNLUnit(AuthorsSNLUnit):
    """SNL-MMSeg's unit: the classification unit (``AuthorsSNLUnit``) with the W2 term
    subtracted, the sign of the authors' segmentation file."""

    def forward(self, x, att):
        g = self.g(x)
        b, c, h, w = g.shape
        ag = torch.bmm(att, g.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        out = self.w_1(g) - self.w_2(ag)
        if self.generalized:
            out = out + self.w_3(2 * ag - g)
        return x + torch.relu(self.bn(out))


class SNLAuthorsHead(AuthorsNLStyleHead):
    """The SNL authors' segmentation head: NLHead's structure with their stage
    (``AuthorsSNLStage``: t, p, ``layers`` of units) between convs[0] and convs[1]; the
    attribute name of the stage is a parameter (not recorded here)."""

    def __init__(self, reduction=2, stage_num=1, generalized=False, w2_sign='minus',
                 block_name='snl_block', **kwargs):
        super().__init__(num_convs=2, **kwargs)
        self.block_name = block_name
        c, ci = self.channels, self.channels // reduction
        stage = AuthorsSNLStage(c, ci, stage_num, generalized)
        if w2_sign == 'minus':
            stage.layers = nn.ModuleList(SegmentationSNLUnit(c, ci, generalized)
                                         for _ in range(stage_num))
        setattr(self, block_name, stage)

