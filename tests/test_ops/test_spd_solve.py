"""nlseg.ops.spd_solve (the exportable ridge solve of Hamburger's CD) against torch.linalg."""
import pytest
import torch

from nlseg.ops.spd_solve import spd_solve


def _spd(batch: int, r: int, beta: float, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d = torch.nn.functional.normalize(torch.randn(batch, 16, r, generator=g, dtype=dtype), dim=1)
    return d.transpose(1, 2) @ d + beta * torch.eye(r, dtype=dtype)


@pytest.mark.parametrize('r', [1, 3, 16])
def test_spd_solve_equals_linalg_solve_float64(r):
    a = _spd(3, r, 0.1, torch.float64)
    b = torch.randn(3, r, 7, dtype=torch.float64)
    torch.testing.assert_close(spd_solve(a, b), torch.linalg.solve(a, b), rtol=1e-10,
                               atol=1e-10)


def test_spd_solve_float32_agrees_with_linalg_solve_and_residual_is_small():
    a = _spd(2, 64, 0.1, torch.float32)  # Hamburger's r = 64 and beta = 0.1
    b = torch.randn(2, 64, 100)
    x = spd_solve(a, b)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-4, atol=1e-4)
    assert (a @ x - b).abs().max() < 1e-4


def test_spd_solve_gradients_match_linalg_solve():
    a = _spd(2, 5, 0.1, torch.float64).requires_grad_()
    b = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    g1 = torch.autograd.grad(spd_solve(a, b).square().sum(), (a, b))
    g2 = torch.autograd.grad(torch.linalg.solve(a, b).square().sum(), (a, b))
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('a_shape, b_shape', [((2, 3, 4), (2, 3, 5)), ((3,), (3, 1)),
                                              ((2, 3, 3), (2, 4, 5))])
def test_spd_solve_rejects_bad_shapes(a_shape, b_shape):
    with pytest.raises(ValueError, match='spd_solve'):
        spd_solve(torch.ones(a_shape), torch.ones(b_shape))
