"""The hams (NMF2D, VQ2D, CD2D) and the Hamburger block."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nlseg.models import CD2D, NMF2D, VQ2D, Hamburger
from tests.helpers import ROOT, tool_env

HAMS = {'NMF': NMF2D, 'VQ': VQ2D, 'CD': CD2D}
REPO = Path(ROOT)


def relu_input(b=2, c=16, h=5, w=6, seed=0):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed)).relu()


# ---- equality with mmseg ----------------------------------------------------------------------
@pytest.mark.parametrize('md_s', [1, 2])
def test_nmf_equals_mmseg_nmf2d_train_mode(md_s):
    from mmseg.models.decode_heads.ham_head import NMF2D as MMSegNMF2D
    x = relu_input()
    outs, grads = [], []
    for build in (lambda: NMF2D(16, MD_S=md_s, MD_R=4, train_steps=3, grad='bptt'),
                  lambda: MMSegNMF2D(dict(MD_S=md_s, MD_R=4, train_steps=3))):
        ham = build().train()
        xg = x.clone().requires_grad_()
        torch.manual_seed(123)
        out = ham(xg)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(xg.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)   # same ops, same order
    torch.testing.assert_close(grads[0], grads[1])                 # mmseg differentiates all


def test_nmf_one_step_has_mmseg_values():
    from mmseg.models.decode_heads.ham_head import NMF2D as MMSegNMF2D
    x = relu_input()
    torch.manual_seed(5)
    ours = NMF2D(16, MD_R=4).train()(x)
    torch.manual_seed(5)
    theirs = MMSegNMF2D(dict(MD_R=4)).train()(x)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


# ---- reconstruction ---------------------------------------------------------------------------
def low_rank_data(name, b=4, d=64, h=16, w=16, seed=0):
    """Non-negative rank-16 data for NMF (rank = MD_R = 16). For the k-means based hams,
    rank-4 data (4 clusters for VQ, Gaussian rank 4 for CD) seen with MD_R = 16 atoms: with
    as many atoms as clusters, a random init often merges two clusters into one atom."""
    g = torch.Generator().manual_seed(seed)
    n = h * w
    if name == 'NMF':
        x = torch.rand(b, d, 16, generator=g) @ torch.rand(b, 16, n, generator=g)
    elif name == 'VQ':
        centres = torch.randn(b, d, 4, generator=g)
        labels = torch.randint(0, 4, (b, 1, n), generator=g).expand(b, d, n)
        x = centres.gather(2, labels) + 0.01 * torch.randn(b, d, n, generator=g)
    else:
        x = torch.randn(b, d, 4, generator=g) @ torch.randn(b, 4, n, generator=g)
    return x.reshape(b, d, h, w)


@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_reconstructs_low_rank_data(name):
    x = low_rank_data(name)
    torch.manual_seed(0)
    out = HAMS[name](64, MD_R=16, train_steps=6).train()(x)
    rel = (out - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert rel.max() < 0.1, rel
    # and a rank-r output cannot reproduce full-rank noise
    noise = torch.rand(2, 64, 16, 16)
    rel_noise = (HAMS[name](64, MD_R=16)(noise) - noise).norm() / noise.norm()
    assert rel_noise > 0.1


# ---- evaluation determinism -------------------------------------------------------------------
@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_eval_is_deterministic(name):
    x = relu_input()
    ham = HAMS[name](16, MD_R=4).eval()
    torch.manual_seed(0)
    a = ham(x)
    torch.manual_seed(1)                                   # global RNG state is irrelevant
    assert torch.equal(ham(x), a)
    assert torch.equal(ham(x[1:]), a[1:])                  # independent of the batch
    assert not torch.equal(HAMS[name](16, MD_R=4, eval_seed=1).eval()(x), a)
    ham.train()
    assert not torch.equal(ham(x), ham(x))                 # training keeps random bases


@pytest.mark.slow
def test_eval_is_deterministic_across_processes(tmp_path):
    code = textwrap.dedent("""
        import sys, torch
        from nlseg.models import NMF2D, VQ2D, CD2D
        x = torch.randn(2, 16, 5, 6, generator=torch.Generator().manual_seed(0)).relu()
        torch.manual_seed(int(sys.argv[1]))
        outs = [cls(16, MD_R=4).eval()(x) for cls in (NMF2D, VQ2D, CD2D)]
        torch.save(outs, sys.argv[2])
    """)
    files = [tmp_path / f'{i}.pt' for i in range(2)]
    for seed, f in enumerate(files):
        subprocess.run([sys.executable, '-c', code, str(seed), str(f)], check=True, cwd=REPO,
                       env=tool_env())
    first, second = (torch.load(f) for f in files)
    x = relu_input()
    here = [cls(16, MD_R=4).eval()(x) for cls in (NMF2D, VQ2D, CD2D)]
    for a, b, c in zip(first, second, here):
        assert torch.equal(a, b) and torch.equal(a, c)


# ---- rand_init=False --------------------------------------------------------------------------
def test_fixed_bases_buffer_and_online_update():
    ham = NMF2D(16, MD_S=2, MD_R=4, rand_init=False, eta=0.5)
    assert ham.bases.shape == (2, 8, 4)
    torch.testing.assert_close(ham.bases.norm(dim=1), torch.ones(2, 4))
    assert 'bases' in ham.state_dict()
    other = NMF2D(16, MD_S=2, MD_R=4, rand_init=False)
    other.load_state_dict(ham.state_dict())
    assert torch.equal(other.bases, ham.bases)

    solved = torch.rand(3 * 2, 8, 4)
    before = ham.bases.clone()
    ham.online_update(solved)
    expected = F.normalize(before + 0.5 * (solved.view(3, 2, 8, 4).mean(0) - before), dim=1)
    torch.testing.assert_close(ham.bases, expected)

    x = relu_input()
    ham.eval()
    before = ham.bases.clone()
    assert torch.equal(ham(x), ham(x)) and torch.equal(ham.bases, before)
    ham.train()(x)
    assert not torch.equal(ham.bases, before)             # warm start moves in training


# ---- precision and degenerate input -----------------------------------------------------------
@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_finite_under_bf16_autocast_and_zero_input(name):
    ham = HAMS[name](16, MD_R=4).eval()
    x = relu_input()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = ham(x.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    # the decomposition itself ran in float32: only the final cast differs
    torch.testing.assert_close(out, ham(x.bfloat16().float()).bfloat16(), rtol=0, atol=0)
    zero = ham.train()(torch.zeros(2, 16, 5, 6))
    assert torch.isfinite(zero).all()


@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_gradcheck_module_float64(name):
    ham = HAMS[name](4, MD_R=2, eval_steps=2, inv_t=2, grad='bptt').eval()
    x = relu_input(1, 4, 2, 3).double() + 0.1
    assert torch.autograd.gradcheck(ham, (x.requires_grad_(),))


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize('kwargs, match', [
    (dict(MD_S=3), 'divisible by MD_S'),
    (dict(MD_R=0), 'MD_R'),
    (dict(train_steps=0), 'train_steps'),
    (dict(eval_steps=0), 'eval_steps'),
    (dict(grad='full'), "one_step"),
])
def test_ham_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NMF2D(16, **kwargs)


def test_ham_wrong_channels():
    with pytest.raises(ValueError, match='expects 16 input channels, got 8'):
        VQ2D(16, MD_R=4)(torch.rand(1, 8, 4, 4))


# ---- Hamburger block --------------------------------------------------------------------------
def test_hamburger_param_count_table3():
    """Paper Table 3: Hamburger with d = 512, r = 64 on C = 512 has 0.50M parameters."""
    for ham_type in ('NMF', 'CD'):
        block = Hamburger(512, 512, ham_type, dict(MD_R=64), norm_cfg=dict(type='BN'))
        n = sum(p.numel() for p in block.parameters())
        assert abs(n - 0.50e6) <= 0.06 * 0.50e6, n


@pytest.mark.parametrize('ham_type', ['NMF', 'VQ', 'CD'])
def test_hamburger_is_eq6(ham_type):
    block = Hamburger(8, 16, ham_type, dict(MD_R=4), norm_cfg=dict(type='BN')).eval()
    x = torch.randn(2, 8, 5, 6)
    y = block(x)
    expected = x + block.upper_bread(block.ham(block.lower_bread(x)))
    assert block.low_rank_active  # the factored path (exact in real arithmetic)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    block.impl = 'dense'  # the modules one after the other: bit-identical
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
    assert (y < 0).any()                              # paper eq. 6: no trailing ReLU
    relu_block = Hamburger(8, 16, ham_type, dict(MD_R=4), trailing_relu=True).eval()
    relu_block.load_state_dict(block.state_dict(), strict=False)
    assert (relu_block(x) >= 0).all()
    # NMF needs a non-negative input: the lower bread ends with a ReLU only there
    assert block.lower_bread.with_activation == (ham_type == 'NMF')


def test_hamburger_one_step_trains_both_breads():
    block = Hamburger(8, 16, 'NMF', dict(MD_R=4)).train()
    block(torch.randn(2, 8, 5, 6)).square().mean().backward()
    assert block.lower_bread.conv.weight.grad.abs().sum() > 0
    assert block.upper_bread.conv.weight.grad.abs().sum() > 0


def test_hamburger_bad_input():
    with pytest.raises(ValueError, match=r"\('NMF', 'VQ', 'CD'\)"):
        Hamburger(8, 16, 'SVD')
    with pytest.raises(ValueError, match="one_step"):
        Hamburger(8, 16, 'VQ', dict(grad='implicit'))
    with pytest.raises(ValueError, match='divisible by MD_S'):
        Hamburger(8, 18, 'NMF', dict(MD_S=4))
    with pytest.raises(ValueError, match=r'8 channels\), got shape \(1, 4, 3, 3\) \(4 channels'):
        Hamburger(8, 16)(torch.rand(1, 4, 3, 3))
