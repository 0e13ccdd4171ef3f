"""The heads the deployment tests export and compile: every nlseg head at small channel
counts, with random BatchNorm statistics, as a module of one feature map."""
from __future__ import annotations

import torch

from nlseg.deploy import FeatureMapHead

IN_CHANNELS = 8
NUM_CLASSES = 3
NORM = dict(type='BN', requires_grad=True)
#: export size and the second size the same graph must run at (H != W, neither a multiple
#: of the other, odd sizes for the 2x2 key pooling)
SIZE = (10, 12)
SECOND_SIZE = (13, 9)


def common_cfg(**kwargs) -> dict:
    return dict(in_channels=IN_CHANNELS, channels=8, num_classes=NUM_CLASSES, norm_cfg=NORM,
                align_corners=False, **kwargs)


def fcn_cfg() -> dict:
    return dict(type='FCNHead', num_convs=2, concat_input=True, **common_cfg())


#: every head at small channel counts; the NL family with the output gate open
#: (zero_init_output=False), otherwise the context block would start as the identity and the
#: comparison would not see it
HEADS = {
    'nl_embedded_gaussian': dict(type='NonLocalHead', mode='embedded_gaussian',
                                 zero_init_output=False),
    'nl_gaussian': dict(type='NonLocalHead', mode='gaussian', zero_init_output=False),
    'nl_dot_product': dict(type='NonLocalHead', mode='dot_product', zero_init_output=False),
    'nl_concatenation': dict(type='NonLocalHead', mode='concatenation',
                             zero_init_output=False),
    'nl_sub_sample_dense': dict(type='NonLocalHead', mode='embedded_gaussian', sub_sample=True,
                                impl='dense', zero_init_output=False),
    'arnl': dict(type='ARNLHead', zero_init_output=False),
    'ns': dict(type='NSHead', num_units=2, zero_init_output=False),
    'snl': dict(type='SNLHead', zero_init_output=False),
    'gsnl': dict(type='GSNLHead', zero_init_output=False),
    'ham_nmf': dict(type='HamburgerHead', ham_channels=8, ham_type='NMF',
                    ham_kwargs=dict(MD_R=4)),
    'ham_vq': dict(type='HamburgerHead', ham_channels=8, ham_type='VQ',
                   ham_kwargs=dict(MD_R=4)),
    'ham_cd': dict(type='HamburgerHead', ham_channels=8, ham_type='CD',
                   ham_kwargs=dict(MD_R=4)),
    'nltv_fcn': dict(type='NLTVHead', base_head=fcn_cfg(),
                     nltv=dict(k=4, test_iters=5, tol=None)),
    'nltv_fcn_learnable_graph': dict(type='NLTVHead', base_head=fcn_cfg(),
                                     nltv=dict(k=4, test_iters=5, tol=None,
                                               learnable_graph=True)),
}


def build_head(name: str) -> torch.nn.Module:
    """The head of ``HEADS[name]`` in eval mode, with random BatchNorm statistics and affine
    parameters (so that the exported normalisation is exercised, not the identity)."""
    import nlseg  # noqa: F401  (registers the heads)
    from mmseg.registry import MODELS

    cfg = dict(HEADS[name])
    if cfg['type'] != 'NLTVHead':
        cfg.update(common_cfg())
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    g = torch.Generator().manual_seed(1)
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(c, generator=g))
            m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            m.weight.data.copy_(1 + 0.2 * torch.randn(c, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(c, generator=g))
    return FeatureMapHead(head).eval()


def feature_map(size: tuple[int, int], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, IN_CHANNELS, *size, generator=g)
