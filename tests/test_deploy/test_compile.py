"""torch.compile of every head: 3 training iterations equal eager's (aot_eager backend: the
autograd graphs of torch.compile without inductor's code generation, which is too slow to
compile on 2 cores for every head in training), and eval outputs of the inductor-compiled
head equal eager's. Graph breaks are counted with torch._dynamo.explain."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from .heads import HEADS, NUM_CLASSES, SIZE, build_head, feature_map

#: float32 agreement of compiled and eager runs, |compiled - eager| <= ATOL + RTOL |eager|
#: (other kernels and fusion orders; the largest measured difference, 4e-5, is Ham-VQ's
#: inductor output: its softmax at inverse temperature 100 amplifies rounding)
RTOL, ATOL = 1e-4, 1e-4
STEPS = 3


def _train(module: torch.nn.Module, forward, steps: int = STEPS) -> list[float]:
    """``steps`` SGD steps of cross entropy on random labels; returns the losses."""
    torch.manual_seed(123)  # the same training-mode random draws (the hams' bases) each run
    optim = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(7)
    losses = []
    module.train()
    for i in range(steps):
        x = feature_map(SIZE, 10 + i)
        target = torch.randint(0, NUM_CLASSES, (1, *SIZE), generator=g)
        loss = F.cross_entropy(forward(x), target)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss))
    return losses


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize('name', list(HEADS))
def test_compiled_training_equals_eager(name):
    eager = build_head(name)
    compiled = copy.deepcopy(eager)
    start = [p.detach().clone() for p in eager.parameters()]
    eager_losses = _train(eager, eager)
    compiled_losses = _train(compiled, torch.compile(compiled, backend='aot_eager'))
    assert all(torch.isfinite(torch.tensor(compiled_losses)))
    torch.testing.assert_close(torch.tensor(compiled_losses), torch.tensor(eager_losses),
                               rtol=RTOL, atol=ATOL)
    changed = False
    for p0, pe, pc in zip(start, eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(pc, pe, rtol=RTOL, atol=ATOL)
        changed |= not torch.equal(pc, p0)
    assert changed, 'no parameter changed in 3 training iterations'
    for be, bc in zip(eager.buffers(), compiled.buffers()):  # BN running statistics
        torch.testing.assert_close(bc, be, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('name', list(HEADS))
def test_no_graph_break(name):
    """Every head compiles to one graph, in eval and in training mode (the counts of
    torch._dynamo.explain; docs/deployment.md)."""
    module = build_head(name)
    x = feature_map(SIZE, 1)
    for train in (False, True):
        module.train(train)
        torch._dynamo.reset()
        with torch.set_grad_enabled(train):
            explain = torch._dynamo.explain(module)(x)
        reasons = [str(b.reason).splitlines()[0] for b in explain.break_reasons]
        assert (explain.graph_count, explain.graph_break_count) == (1, 0), (name, train,
                                                                            reasons)


class AllHeads(torch.nn.Module):
    """Every head of HEADS on the same feature map: one module, so that inductor compiles
    (and pays its fixed costs) once, not once per head."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleDict({name: build_head(name) for name in HEADS})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(head(x) for head in self.heads.values())


@pytest.mark.slow  # inductor generates and compiles C++: about 100 s on 2 cores
def test_inductor_eval_equals_eager():
    module = AllHeads().eval()
    x = feature_map(SIZE, 1)
    with torch.no_grad():
        ref = module(x)
        out = torch.compile(module)(x)
    for name, a, b in zip(HEADS, out, ref):
        assert a.shape == b.shape == (1, NUM_CLASSES, *SIZE)
        torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL, msg=lambda m: f'{name}: {m}')
