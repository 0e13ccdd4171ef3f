"""impl='auto': the measured crossover table, choose_impl/resolve_impl and the calibration tool."""
import math
import re

import pytest
import torch

from nlseg.analysis import impl_calibration as calibrate
from nlseg.ops import impl_choice
from nlseg.ops.impl_choice import DENSE_AFFINITY_LIMIT_BYTES, DEVICE_TYPES, IMPLS, KERNELS, \
    choose_impl, crossover_size, format_crossover_table, parse_crossover_table, resolve_impl, \
    resolve_impl_for


# a known table: softmax dense up to N* = 100 at C'=32 and 400 at C'=128 (forward), 0 at
# C'=128 in training; one thread and four threads differ
SYNTHETIC = """
device threads kernel   fwd@32  fwd@128 train@32 train@128
cpu    1       softmax  100     400     50       0
cpu    4       softmax  10      10      10       10
cpu    1       relu_dot 1000000 1000000 1000000  1000000
"""
TABLE = parse_crossover_table(SYNTHETIC)


def _choose(kernel='softmax', n=8, m=None, channels=32, device='cpu', grad=False, **kw):
    kw.setdefault('num_threads', 1)
    kw.setdefault('table', TABLE)
    return choose_impl(kernel, n, n if m is None else m, channels, device, grad, **kw)


# ----------------------------------------------------------------------------- the rule
@pytest.mark.parametrize('channels,grad,n_star', [(32, False, 100), (128, False, 400),
                                                  (32, True, 50)])
def test_dense_up_to_the_crossover_efficient_above(channels, grad, n_star):
    assert _choose(n=n_star, channels=channels, grad=grad) == 'dense'
    assert _choose(n=n_star + 1, channels=channels, grad=grad) == 'efficient'
    assert _choose(n=1, channels=channels, grad=grad) == 'dense'


def test_zero_crossover_means_efficient_from_the_smallest_size():
    assert _choose(n=1, channels=128, grad=True) == 'efficient'


def test_non_square_affinity_uses_its_size():
    # N x M = 200 x 50 = 100^2: the affinity of the N* = 100 square case
    assert _choose(n=200, m=50) == 'dense'
    assert _choose(n=200, m=51) == 'efficient'


def test_channels_interpolate_log_log_and_clamp():
    mid = crossover_size('softmax', 64, 'cpu', False, num_threads=1, table=TABLE)
    assert mid == pytest.approx(math.sqrt(100 * 400))  # halfway in log C' between 32 and 128
    assert crossover_size('softmax', 8, 'cpu', False, 1, TABLE) == 100  # below the grid
    assert crossover_size('softmax', 2048, 'cpu', False, 1, TABLE) == 400  # above it
    # a zero neighbour gives zero (efficient when either measured column says so)
    assert crossover_size('softmax', 64, 'cpu', True, 1, TABLE) == 0


def test_nearest_thread_count_row():
    assert _choose(n=50, num_threads=1) == 'dense'
    assert _choose(n=50, num_threads=4) == 'efficient'   # the 4-thread row: N* = 10
    assert _choose(n=50, num_threads=8) == 'efficient'   # nearest measured: 4
    assert _choose(n=50, num_threads=2) == 'dense'       # tie in log distance: fewer threads
    torch_threads = torch.get_num_threads()
    assert choose_impl('softmax', 50, 50, 32, 'cpu', False, table=TABLE) == _choose(
        n=50, num_threads=torch_threads)


def test_memory_cap_wins_over_the_timing():
    side = int(math.isqrt(DENSE_AFFINITY_LIMIT_BYTES // 4))  # 4096: exactly 64 MiB
    assert side == 4096
    assert _choose('relu_dot', n=side) == 'dense'
    assert _choose('relu_dot', n=side + 1) == 'efficient'
    assert _choose('relu_dot', n=2 * side, m=side // 2) == 'dense'
    assert _choose('relu_dot', n=2 * side, m=side // 2 + 1) == 'efficient'
    assert _choose('relu_dot', n=side, element_size=8) == 'efficient'  # float64: 128 MiB
    assert _choose('relu_dot', n=2896, element_size=8) == 'dense'


def test_unmeasured_device_falls_back_to_efficient():
    assert _choose('relu_dot', n=4, device='cuda') == 'efficient'
    assert _choose('relu_dot', n=4, device='mps') == 'efficient'
    # a kernel without a row for this device: efficient too
    assert _choose('dot_product', n=4) == 'efficient'


# ----------------------------------------------------------------------------- bad input
def test_unknown_kernel_names_the_accepted_values():
    with pytest.raises(ValueError, match=re.escape(str(KERNELS))):
        _choose('gaussian')


def test_unknown_device_names_the_accepted_values():
    with pytest.raises(ValueError, match=re.escape(str(DEVICE_TYPES))):
        _choose(device='gpu')


@pytest.mark.parametrize('kwargs,error', [
    (dict(n=0), ValueError), (dict(n=2.5), TypeError), (dict(channels=0), ValueError),
    (dict(grad='yes'), TypeError), (dict(num_threads=0), ValueError),
    (dict(element_size=0), ValueError)])
def test_bad_sizes_and_flags(kwargs, error):
    with pytest.raises(error):
        _choose(**kwargs)


# ----------------------------------------------------------------------------- resolve_impl
@pytest.mark.parametrize('impl', ['dense', 'efficient'])
def test_resolve_impl_passes_explicit_choices_through(impl):
    # beyond the memory cap, and on an unmeasured device: an explicit choice stays
    assert resolve_impl(impl, 'softmax', 8192, 8192, 64, 'cpu', True) == impl
    assert resolve_impl(impl, 'relu_dot', 2, 2, 8, 'cuda', False, table=TABLE) == impl


def test_resolve_impl_auto_is_choose_impl():
    for n in (4, 100, 101, 5000):
        assert resolve_impl('auto', 'softmax', n, n, 32, 'cpu', False, num_threads=1,
                            table=TABLE) == _choose(n=n)
    assert resolve_impl('auto', 'softmax', 100, 100, 32, 'cpu', False, num_threads=1,
                        table=TABLE) == 'dense'


def test_resolve_impl_bad_impl_names_the_accepted_values():
    with pytest.raises(ValueError, match=re.escape(str(IMPLS))):
        resolve_impl('fast', 'softmax', 4, 4, 8, 'cpu', False)


def test_resolve_impl_for_reads_sizes_device_gradient_and_dtype_from_the_tensors(
        monkeypatch):
    monkeypatch.setattr(impl_choice, '_PARSED', TABLE)  # the known table as the module's
    monkeypatch.setattr(torch, 'get_num_threads', lambda: 1)
    q, k = torch.randn(2, 100, 32), torch.randn(2, 100, 32)
    assert resolve_impl_for('auto', 'softmax', q, k) == 'dense'           # forward: N* 100
    assert resolve_impl_for('auto', 'softmax', q, k.requires_grad_()) == 'efficient'  # 50
    with torch.no_grad():
        assert resolve_impl_for('auto', 'softmax', q, k) == 'dense'
    q, k = torch.randn(1, 400, 32), torch.randn(1, 25, 32)                # 400 x 25 = 100^2
    v = torch.randn(1, 25, 8)
    assert resolve_impl_for('auto', 'softmax', q, k, v) == 'dense'
    assert resolve_impl_for('auto', 'softmax', q, k, v.requires_grad_()) == 'efficient'
    assert resolve_impl_for('dense', 'softmax', q, k, v) == 'dense'
    big = torch.randn(1, 4096, 8)
    assert resolve_impl_for('auto', 'relu_dot', big, big) == 'dense'       # 64 MiB float32
    assert resolve_impl_for('auto', 'relu_dot', big.double(), big.double()) == 'efficient'
    with pytest.raises(ValueError, match='query'):
        resolve_impl_for('auto', 'softmax', torch.randn(100, 32), k)


# ----------------------------------------------------------------------------- the table
def test_module_table_parses_one_row_per_kernel():
    rows = parse_crossover_table(impl_choice.CROSSOVER_TABLE)
    groups = {(r.device, r.threads) for r in rows}
    assert ('cpu', 1) in groups, 'no single-threaded CPU row measured'
    for group in groups:
        kernels = [r.kernel for r in rows if (r.device, r.threads) == group]
        assert sorted(kernels) == sorted(KERNELS), group
    for r in rows:
        assert set(r.crossovers) == {'forward', 'train'}
        assert len(r.crossovers['forward']) >= 2  # several channel counts
    for key in ('date', 'machine', 'command', 'note'):
        assert impl_choice.MEASURED_ON[key] and impl_choice.MEASURED_ON[key] != 'not measured'


def test_module_table_crossovers_decide_choose_impl():
    """For every measured (row, pass, C'): dense at N = floor(N*), efficient one size above
    (or from N = 1 when N* < 1)."""
    for r in parse_crossover_table(impl_choice.CROSSOVER_TABLE):
        for pass_name, by_channels in r.crossovers.items():
            grad = pass_name == 'train'
            for channels, n_star in by_channels.items():
                n = int(n_star)
                args = (r.kernel, channels, 'cpu', grad)
                if n >= 1:
                    assert choose_impl(r.kernel, n, n, channels, 'cpu', grad,
                                       num_threads=r.threads) == 'dense', (r, args)
                assert choose_impl(r.kernel, n + 1, n + 1, channels, 'cpu', grad,
                                   num_threads=r.threads) == 'efficient', (r, args)


@pytest.mark.parametrize('text', [
    'kernel softmax\n',                                                   # no header
    'device threads kernel fwd@32\ncpu 1 softmax\n',                  # missing value
    'device threads kernel fwd@32\ncpu 1 nonlocal 10\n',              # unknown kernel
    'device threads kernel fwd@32\ngpu 1 softmax 10\n',               # unknown device
    'device threads kernel backward@32\ncpu 1 softmax 10\n',              # unknown pass
    'device threads kernel forward\ncpu 1 softmax 10\n',                  # no channels
    'device threads kernel fwd@32\ncpu 1 softmax -1\n',               # negative N*
    'device threads kernel fwd@32\ncpu 1 softmax 1\ncpu 1 softmax 2\n',  # repeated row
])
def test_malformed_tables_are_refused(text):
    with pytest.raises(ValueError):
        parse_crossover_table(text)


def test_format_parse_round_trip():
    again = parse_crossover_table(format_crossover_table(TABLE))
    assert again == TABLE


# ----------------------------------------------------------------------------- the tool
def test_check_table_compares_the_picked_path_with_the_faster(monkeypatch):
    monkeypatch.setattr(impl_choice, '_PARSED', TABLE)
    # softmax forward C'=32, 1 thread: N* = 100 -> dense at 64, efficient at 128
    cells = [(1, 'softmax', 'forward', 32, 64, 1.0, 2.0),     # dense picked, dense faster
             (1, 'softmax', 'forward', 32, 128, 1.0, 3.0)]    # efficient picked: 3x
    text = calibrate.check_table(cells)
    assert 'in 50% of cells, mean time 2.000x the faster, worst 3.00x' in text
    assert 'always efficient: within 10% of the faster path in 0% of cells, mean time ' \
           '2.500x' in text


def test_oversubscribed_cores_are_detected():
    assert not calibrate.oversubscribed(6.0, 4.0)          # idle: about the same
    assert not calibrate.oversubscribed(90.0, 4.0)         # under 100 us more
    assert calibrate.oversubscribed(27960.0, 4.0)          # measured on the shared machine
    assert calibrate.oversubscribed(501.0, 50.0) and not calibrate.oversubscribed(499.0, 50.0)


def test_tool_skips_an_oversubscribed_thread_count(monkeypatch, capsys):
    probes = iter([4.0, 27960.0])
    monkeypatch.setattr(calibrate, 'contention_probe', lambda: next(probes))
    torch_threads = torch.get_num_threads()
    try:
        rows = calibrate.main(['--threads', '2', '--kernels', 'dot_product', '--sizes', '8',
                               '--channels', '4', '--repeats', '1', '--cell-seconds', '0'])
    finally:
        torch.set_num_threads(torch_threads)
    assert [(r.threads, r.kernel) for r in rows] == [(1, 'dot_product')]
    assert 'threads=2: SKIPPED' in capsys.readouterr().out


def test_contended_series_are_recognised(monkeypatch):
    monkeypatch.setattr(calibrate, 'contention_probe', lambda runs=200: 5.0)
    reference = {16: (0.05, 0.05), 32: (0.06, 0.06)}
    clean = [(16, 0.05, 0.04, 1.25), (32, 0.07, 0.2, 0.35), (64, 9.0, 9.0, 1.0)]
    assert calibrate.contended(clean, reference, 4.0) is None
    stalled = [(16, 0.05, 0.04, 1.25), (32, 11.7, 0.2, 58.5)]
    assert 'N=32' in calibrate.contended(stalled, reference, 4.0)
    monkeypatch.setattr(calibrate, 'contention_probe', lambda runs=200: 16000.0)
    assert '64x64 matmul' in calibrate.contended(clean, reference, 4.0)


def test_tool_abandons_a_thread_count_that_stays_contended(monkeypatch, capsys):
    monkeypatch.setattr(calibrate, 'contention_probe', lambda runs=200: 4.0)
    calls = []
    monkeypatch.setattr(calibrate, 'contended', lambda *a: calls.append(a) or 'stalled')
    torch_threads = torch.get_num_threads()
    try:
        rows = calibrate.main(['--threads', '2', '--kernels', 'dot_product', '--sizes', '8',
                               '--channels', '4', '--repeats', '1', '--cell-seconds', '0',
                               '--retries', '1', '--retry-pause', '0'])
    finally:
        torch.set_num_threads(torch_threads)
    assert [(r.threads, r.kernel) for r in rows] == [(1, 'dot_product')]
    assert len(calls) == 2  # the first 2-thread series, measured twice
    out = capsys.readouterr().out
    assert 'attempt 2 of 2' in out and 'threads=2: ABANDONED' in out


def test_crossover_interpolates_and_ignores_single_wins():
    sizes = [16, 32, 64, 128, 256]
    assert calibrate.crossover(sizes, [0.5, 0.8, 1.25, 2, 3]) == pytest.approx(
        math.sqrt(32 * 64))
    # one efficient win (at 32) not confirmed at 64: the crossing is between 64 and 128
    n = calibrate.crossover(sizes, [0.5, 1.2, 0.8, 1.5, 2])
    assert 64 < n < 128
    assert calibrate.crossover(sizes, [1.1, 0.9, 0.9, 0.9, 0.9]) == 256  # dense at the end
    assert calibrate.crossover(sizes, [1.5, 2, 3, 4, 5]) == 0
    assert calibrate.crossover(sizes, [0.9, 0.9, 0.9, 0.9, 1.1]) == pytest.approx(
        math.exp(math.log(128) + math.log(0.9) / (math.log(0.9) - math.log(1.1))
                 * (math.log(256) - math.log(128))))


@pytest.mark.parametrize('kernel', KERNELS)
@pytest.mark.parametrize('train', [False, True])
def test_timed_paths_compute_the_same(kernel, train):
    """The tool times two computations of the same thing (outputs and gradients agree)."""
    inputs, params = calibrate.make_inputs(kernel, 2, 24, 8, 2, requires_grad=True)
    dense, efficient = calibrate.paths(kernel, params)
    out_d, out_e = dense(inputs), efficient(inputs)
    if isinstance(out_d, tuple):  # ns_stage: one output per unit
        out_d, out_e = torch.cat(out_d, -1), torch.cat(out_e, -1)
    torch.testing.assert_close(out_e, out_d, rtol=1e-4, atol=1e-5)
    if train:
        seed = torch.randn_like(out_d)
        for gd, ge in zip(torch.autograd.grad(out_d, inputs, seed),
                          torch.autograd.grad(out_e, inputs, seed)):
            torch.testing.assert_close(ge, gd, rtol=1e-4, atol=1e-5)


def test_tool_measures_every_kernel_and_writes_a_table_that_parses(tmp_path, capsys):
    torch_threads = torch.get_num_threads()
    try:
        rows = calibrate.main(['--threads', '1', '--sizes', '8', '16', '--channels', '4', '8',
                               '--repeats', '1', '--cell-seconds', '0'])
    finally:
        torch.set_num_threads(torch_threads)
    assert [(r.device, r.threads, r.kernel) for r in rows] == [('cpu', 1, k) for k in KERNELS]
    for r in rows:
        assert set(r.crossovers) == {'forward', 'train'}
        assert set(r.crossovers['train']) == {4, 8}
        assert all(n in (0.0, 16.0) or 8 <= n <= 16 for n in r.crossovers['train'].values())
    printed = capsys.readouterr().out
    assert printed.count("C'=") == len(KERNELS) * 2 * 2
    # --write's JSON (here to a temporary path) reads back as the same table
    path = tmp_path / 'crossovers.json'
    calibrate.write_table(rows, {'date': 'd', 'machine': 'm', 'command': 'c', 'note': 'n'},
                          str(path))
    again, measured_on = impl_choice.load_crossover_table(str(path))
    assert measured_on == {'date': 'd', 'machine': 'm', 'command': 'c', 'note': 'n'}
    assert again == rows
    calibrate.write_table(rows, measured_on, str(path))  # idempotent
    assert impl_choice.load_crossover_table(str(path)) == (rows, measured_on)


def test_auto_under_tracing_is_the_efficient_path():
    """torch.jit.trace (and mmengine's FlopAnalyzer, which traces) hands sizes over as
    tensors and replays the graph at other sizes: 'auto' takes the size-independent path."""
    from nlseg.ops.impl_choice import resolve_impl

    def f(x):
        n = x.shape[0]
        impl = resolve_impl('auto', 'softmax', n, n, 4, 'cpu', False)
        return x * (1.0 if impl == 'efficient' else 2.0)

    traced = torch.jit.trace(f, torch.ones(4))
    assert torch.equal(traced(torch.ones(4)), torch.ones(4))
