"""The kernel registry (nlseg.ops.kernels): one entry per kernel of impl='auto', its two exact
paths equal in float64 (values and gradients), the measured table as package JSON, and the
impl='auto' decisions unchanged by the move of the table from Python source to JSON."""
import json

import pytest
import torch

from nlseg.analysis import impl_calibration as calibrate
from nlseg.models import AdaptiveNonLocalBlock, NonLocalBlock, NonLocalStage, \
    SpectralNonLocalBlock
from nlseg.models.blocks.non_local_base import NL_MODES
from nlseg.models.blocks.non_local_stage import NS_MODES
from nlseg.ops import impl_choice
from nlseg.ops.impl_choice import choose_impl, resolve_impl
from nlseg.ops.kernels import CROSSOVERS_PATH, KERNELS, Kernel, check_kernel, get_kernel

EXPECTED_KERNELS = ('softmax', 'dot_product', 'concatenation', 'relu_dot', 'ns_stage')


def test_registry_has_every_kernel_in_the_table_order():
    assert tuple(KERNELS) == EXPECTED_KERNELS
    assert impl_choice.KERNELS == EXPECTED_KERNELS
    for name, kernel in KERNELS.items():
        assert isinstance(kernel, Kernel) and kernel.name == name
        assert callable(kernel.dense) and callable(kernel.efficient) and kernel.doc
        assert kernel.dense is not kernel.efficient
        # one file per kernel: both paths live in nlseg/ops/kernels/<name>.py
        assert kernel.dense.__module__ == f'nlseg.ops.kernels.{name}'
        assert kernel.efficient.__module__ == f'nlseg.ops.kernels.{name}'
    assert get_kernel('softmax') is KERNELS['softmax']
    with pytest.raises(ValueError, match="kernel must be one of"):
        check_kernel('hamburger_upper')


def _outputs(out):
    return torch.cat(out, -1) if isinstance(out, tuple) else out


@pytest.mark.parametrize('name', EXPECTED_KERNELS)
@pytest.mark.parametrize('n', [1, 7, 40])
def test_dense_equals_efficient_in_float64(name, n):
    """Values and gradients of every input, float64, B = 2, C' = 5, two NS units."""
    kernel = KERNELS[name]
    inputs, params = kernel.example_inputs(
        2, n, 5, units=2, generator=torch.Generator().manual_seed(n), dtype=torch.float64,
        requires_grad=True)
    assert all(t.dtype == torch.float64 for t in inputs)
    out_d = _outputs(kernel.dense(*inputs, **params))
    out_e = _outputs(kernel.efficient(*inputs, **params))
    assert out_d.dtype == out_e.dtype == torch.float64
    torch.testing.assert_close(out_e, out_d, rtol=1e-10, atol=1e-12)
    seed = torch.randn_like(out_d)
    for gd, ge in zip(torch.autograd.grad(out_d, inputs, seed),
                      torch.autograd.grad(out_e, inputs, seed)):
        torch.testing.assert_close(ge, gd, rtol=1e-10, atol=1e-12)


def test_relu_dot_random_walk_paths_agree():
    kernel = KERNELS['relu_dot']
    inputs, _ = kernel.example_inputs(1, 9, 4, dtype=torch.float64)
    torch.testing.assert_close(kernel.efficient(*inputs, normalization='random_walk'),
                               kernel.dense(*inputs, normalization='random_walk'))


def test_every_block_names_a_registry_kernel():
    blocks = [NonLocalBlock(8, mode=m) for m in NL_MODES]
    blocks += [AdaptiveNonLocalBlock(8, mode=m) for m in ('gaussian', 'embedded_gaussian')]
    blocks += [NonLocalStage(8, mode=m) for m in NS_MODES]
    blocks += [SpectralNonLocalBlock(8)]
    for block in blocks:
        assert block.kernel in KERNELS, (type(block).__name__, block.kernel)


def test_resolve_impl_refuses_a_kernel_outside_the_registry():
    for impl in ('auto', 'dense', 'efficient'):
        with pytest.raises(ValueError, match='kernel must be one of'):
            resolve_impl(impl, 'hamburger_upper', 4, 4, 8, 'cpu', False)


# ----------------------------------------------------------------------------- the JSON
def test_package_table_is_json_with_its_measurement_record():
    with open(CROSSOVERS_PATH) as f:
        data = json.load(f)
    assert set(data['measured_on']) == set(impl_choice.MEASURED_ON_KEYS)
    rows, measured_on = impl_choice.load_crossover_table()
    assert measured_on == data['measured_on'] == impl_choice.MEASURED_ON
    assert measured_on['date'] == '2026-12-02 16:28 UTC'
    assert impl_choice.parse_crossover_table(impl_choice.CROSSOVER_TABLE) == rows
    assert impl_choice.load_crossover_table()[0] is not rows  # copies: the cache is safe


def test_json_round_trip(tmp_path):
    rows, measured_on = impl_choice.load_crossover_table()
    path = tmp_path / 'table.json'
    impl_choice.write_crossover_table(rows, measured_on, str(path))
    assert impl_choice.load_crossover_table(str(path)) == (rows, measured_on)
    assert path.read_text() == open(CROSSOVERS_PATH).read()  # the package file is this form


def test_calibration_write_to_a_temp_path_loads_the_same_table(tmp_path):
    path = tmp_path / 'crossovers.json'
    threads = torch.get_num_threads()
    try:
        rows = calibrate.main(['--threads', '1', '--sizes', '8', '16', '--channels', '4',
                               '--repeats', '1', '--cell-seconds', '0', '--write',
                               '--table-path', str(path), '--note', 'test'])
    finally:
        torch.set_num_threads(threads)
    again, measured_on = impl_choice.load_crossover_table(str(path))
    assert again == rows and [r.kernel for r in rows] == list(EXPECTED_KERNELS)
    assert measured_on['note'].endswith('; test') and '--table-path' in measured_on['command']


@pytest.mark.parametrize('text', [
    'not json',
    '{"rows": []}',                                                             # no measured_on
    '{"measured_on": {"date": "d"}, "rows": []}',                               # keys missing
    '{"measured_on": {"date": "d", "machine": "m", "command": "c", "note": "n"}, '
    '"rows": [{"device": "cpu", "threads": 1, "kernel": "nonlocal", "forward": {"8": 1}}]}',
    '{"measured_on": {"date": "d", "machine": "m", "command": "c", "note": "n"}, '
    '"rows": [{"device": "cpu", "threads": 1, "kernel": "softmax", "forward": {"8": -1}}]}',
    '{"measured_on": {"date": "d", "machine": "m", "command": "c", "note": "n"}, '
    '"rows": [{"device": "cpu", "threads": 1, "kernel": "softmax", "backward": {"8": 1}}]}',
])
def test_malformed_json_tables_are_refused(text):
    with pytest.raises(ValueError):
        impl_choice.crossover_table_from_json(text)


# ----------------------------------------------------------------------------- decisions
#: choose_impl on the package table, computed BEFORE the table moved from impl_choice.py's
#: source to crossovers.json: per (kernel, requires_grad, threads), 'd'/'e' for N = M in NS
#: (outer) x C' in CS (inner)
NS = (16, 60, 128, 300, 700, 1500, 3000, 4096)
CS = (8, 32, 48, 100, 256, 512)
EXPECTED = {
    ('softmax', False, 1): 'ddddddddddddeeedddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('softmax', False, 2): 'eeeeddeeeeddeeeeddeeeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('softmax', False, 3): 'eeeeddeeeeddeeeeddeeeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('softmax', True, 1): 'ddddddddddddddddddddddddddddddddddddeeeeeeeeeeee',
    ('softmax', True, 2): 'ddddddddddddddddddddddddddddddeeedddeeeeeeeeeeee',
    ('softmax', True, 3): 'ddddddddddddddddddddddddddddddeeedddeeeeeeeeeeee',
    ('dot_product', False, 1): 'eeeeddeeeeddeeeeddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('dot_product', False, 2): 'eeeeddeeeeddeeeeddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('dot_product', False, 3): 'eeeeddeeeeddeeeeddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('dot_product', True, 1): 'eeedddeeedddeeeeddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('dot_product', True, 2): 'eeedddeeedddeeeeddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('dot_product', True, 3): 'eeedddeeedddeeeeddeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('concatenation', False, 1): 'ddddddddddddddddddddeeeeeeeeeeeeeeeeeeeeeeeeeeee',
    ('concatenation', False, 2): 'ddddddddddddddddddddeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('concatenation', False, 3): 'ddddddddddddddddddddeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('concatenation', True, 1): 'ddddddddddddddddddddddddddddddddddddeeeeeeeeeeee',
    ('concatenation', True, 2): 'ddddddddddddddddddddddddddddddddddddeeeeeeeeeeee',
    ('concatenation', True, 3): 'ddddddddddddddddddddddddddddddddddddeeeeeeeeeeee',
    ('relu_dot', False, 1): 'ddddddeeddddeeedddeeeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('relu_dot', False, 2): 'ddddddddddddeeedddeeeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('relu_dot', False, 3): 'ddddddddddddeeedddeeeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('relu_dot', True, 1): 'ddddddddddddddddddeeeeddeeeeeeeeeeeeeeeeeeeeeeee',
    ('relu_dot', True, 2): 'ddddddddddddddddddeeedddeeeeeeeeeeeeeeeeeeeeeeee',
    ('relu_dot', True, 3): 'ddddddddddddddddddeeedddeeeeeeeeeeeeeeeeeeeeeeee',
    ('ns_stage', False, 1): 'ddddddddddddddddddddddddeeddddeeedddeeeeeeeeeeee',
    ('ns_stage', False, 2): 'ddddddddddddddddddddddddeeddddeeeeddeeeeeeeeeeee',
    ('ns_stage', False, 3): 'ddddddddddddddddddddddddeeddddeeeeddeeeeeeeeeeee',
    ('ns_stage', True, 1): 'ddddddddddddddddddddddddddddddddddddeeddddeeeedd',
    ('ns_stage', True, 2): 'ddddddddddddddddddddddddddddddddddddeeddddeeeedd',
    ('ns_stage', True, 3): 'ddddddddddddddddddddddddddddddddddddeeddddeeeedd',
}
#: (kernel, N, M, C', device, requires_grad, threads, element_size) -> impl, also from before
EXPECTED_EXTRA = [
    (('softmax', 1024, 256, 64, 'cpu', False, 1, 4), 'efficient'),
    (('relu_dot', 4096, 4096, 8, 'cpu', False, 1, 4), 'efficient'),
    (('relu_dot', 4096, 4096, 8, 'cpu', False, 1, 8), 'efficient'),
    (('ns_stage', 2000, 500, 128, 'cpu', True, 2, 4), 'dense'),
    (('dot_product', 100, 100, 32, 'cuda', False, 1, 4), 'efficient'),
    (('concatenation', 300, 75, 64, 'cpu', True, 4, 4), 'dense'),
]


@pytest.mark.parametrize('key', sorted(EXPECTED))
def test_auto_decisions_unchanged(key, monkeypatch):
    monkeypatch.setattr(impl_choice, '_PARSED', None)  # the package table, freshly loaded
    kernel, grad, threads = key
    got = ''.join(choose_impl(kernel, n, n, c, 'cpu', grad, num_threads=threads)[0]
                  for n in NS for c in CS)
    assert got == EXPECTED[key]


def test_auto_decisions_unchanged_off_the_grid(monkeypatch):
    monkeypatch.setattr(impl_choice, '_PARSED', None)
    for (kernel, n, m, c, device, grad, threads, size), impl in EXPECTED_EXTRA:
        assert choose_impl(kernel, n, m, c, device, grad, num_threads=threads,
                           element_size=size) == impl
