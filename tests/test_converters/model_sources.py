"""What the model converter tests share: random weights, inputs, the strict load and the
output comparison, and the arguments of the source modules (tests/references/) and of the
nlseg modules they convert to."""
from __future__ import annotations

import torch
import torch.nn as nn

from nlseg.models import GSNLHead, SNLHead
from tests.references.arnlb import ARNLBHead

BN = dict(type='BN', requires_grad=True)


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every floating parameter and buffer random (running variances positive), so that a
    key mapped to the wrong place changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var'):
                    t.copy_(0.5 + torch.rand(t.shape, generator=g, dtype=t.dtype))
                else:
                    t.copy_(0.3 * torch.randn(t.shape, generator=g, dtype=t.dtype))
    return module


def feature(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


def load_strict(target: nn.Module, state_dict) -> nn.Module:
    result = target.load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return target


def assert_same_output(reference: nn.Module, target: nn.Module, inputs) -> None:
    reference, target = reference.double().eval(), target.double().eval()
    with torch.no_grad():
        expected, actual = reference(inputs), target(inputs)
    assert expected.abs().max() > 1e-3  # not a trivially zero output
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-10)


HEAD_ARGS = dict(in_channels=16, channels=8, num_classes=3, norm_cfg=BN, dropout_ratio=0.1)


def arnlb_reference(mode='embedded_gaussian', seed=0):
    return randomize(ARNLBHead(mode=mode, **HEAD_ARGS), seed)


SNL_ARGS = dict(HEAD_ARGS, concat_input=False)


def snl_target(generalized=False, stage_num=1):
    return (GSNLHead if generalized else SNLHead)(
        stage_num=stage_num, output_relu=True, zero_init_output=False, **SNL_ARGS)


def ham_args(**extra):
    """Fresh arguments of a Hamburger head (mmseg's ham fills its ham_kwargs in place)."""
    return dict(ham_channels=16, channels=6, num_classes=3, norm_cfg=dict(BN),
                ham_kwargs=dict(MD_R=4), dropout_ratio=0.1, **extra)

