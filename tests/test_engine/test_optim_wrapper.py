"""AutocastOptimWrapper: the training forward pass runs in bfloat16 on CPU."""
import pytest
import torch
from torch import nn

import nlseg  # noqa: F401
from nlseg.engine import AutocastOptimWrapper


class _RecordingModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.dtypes = []

    def forward(self, x):
        out = self.linear(x)
        self.dtypes.append(out.dtype)
        return out.float().pow(2).mean()


def test_forward_runs_in_bfloat16_and_updates_parameters():
    torch.manual_seed(0)
    model = _RecordingModel()
    before = model.linear.weight.detach().clone()
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        loss = model(torch.randn(8, 4))
    wrapper.update_params(loss)
    assert model.dtypes == [torch.bfloat16]
    assert model.linear.weight.dtype == torch.float32  # master weights stay fp32
    assert not torch.equal(model.linear.weight, before)
    # outside the context the model runs in float32 again (validation, testing)
    model(torch.randn(2, 4))
    assert model.dtypes[-1] == torch.float32


def test_registered_and_built_from_config():
    from mmseg.registry import OPTIM_WRAPPERS
    model = nn.Linear(2, 2)
    wrapper = OPTIM_WRAPPERS.build(dict(type='AutocastOptimWrapper', dtype='bfloat16',
                                        optimizer=torch.optim.SGD(model.parameters(), lr=1)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    assert wrapper.cast_dtype is torch.bfloat16


def test_bad_dtype_is_refused():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"dtype must be one of \['bfloat16', 'float16'\]"):
        AutocastOptimWrapper(dtype='int8', optimizer=torch.optim.SGD(model.parameters(), lr=1))


def test_float16_on_cpu_says_what_to_do():
    model = nn.Linear(2, 2)
    wrapper = AutocastOptimWrapper(dtype='float16',
                                   optimizer=torch.optim.SGD(model.parameters(), lr=1))
    with pytest.raises(RuntimeError, match="needs a CUDA model.*Use dtype='bfloat16'"):
        with wrapper.optim_context(model):
            pass
