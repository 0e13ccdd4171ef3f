"""nlseg.analysis.key_probe (tools/analysis/probe_key_signal.py): the share and ridge-probe
statistics on known data."""
import numpy as np
import pytest

from nlseg.analysis import key_probe as probe


def _cells(signal: float, noise: float, seed: int = 0):
    """Disc-cell features of 60 images (5 cells each): key one-hot * signal + noise."""
    rng = np.random.default_rng(seed)
    keys = np.repeat(rng.integers(0, 3, 60), 5)
    images = np.repeat(np.arange(60), 5)
    feats = np.eye(3)[keys] * signal + rng.normal(0, noise, (len(keys), 3))
    return feats, keys, images


def test_share_is_one_for_pure_key_signal_and_near_zero_without_it():
    feats, keys, images = _cells(signal=1.0, noise=0.0)
    assert probe.key_share(feats, keys, images) == pytest.approx(1.0)
    feats, keys, images = _cells(signal=0.0, noise=1.0)
    assert probe.key_share(feats, keys, images) < 0.1
    feats, keys, images = _cells(signal=1.0, noise=1.0)
    # key variance 3 * 2/9 against noise variance 3: share about 0.67 / 3.67 = 0.18
    assert 0.1 < probe.key_share(feats, keys, images) < 0.3


def test_ridge_probe_reads_the_key_only_when_present():
    feats, keys, _ = _cells(signal=1.0, noise=0.1)
    assert probe.ridge_probe(feats[:150], keys[:150], feats[150:], keys[150:]) == 1.0
    feats, keys, _ = _cells(signal=0.0, noise=1.0)
    assert probe.ridge_probe(feats[:150], keys[:150], feats[150:], keys[150:]) < 0.55


def test_disc_cells_and_key_of_a_label_map():
    label = np.zeros((16, 16), np.uint8)
    label[8:16, 0:8] = 3  # one full cell of a blue-keyed disc at stride 8
    label[0:8, 8:12] = 3  # half a cell: >= 50 % counts
    disc, key = probe.disc_cells(label, 8)
    assert key == 2
    np.testing.assert_array_equal(disc, [[False, True], [True, False]])
    assert probe.disc_cells(np.zeros((16, 16), np.uint8), 8)[1] is None


def test_heads_expose_their_context_module_as_context_block():
    """The probe hooks ``head.context_block``: HamburgerHead's is its Hamburger (read-only),
    ContextFCNHead's its NL-family block."""
    from nlseg.models import HamburgerHead, NonLocalHead
    from nlseg.models.blocks import Hamburger, NonLocalBase

    common = dict(in_channels=8, channels=8, num_classes=3)
    ham = HamburgerHead(ham_channels=8, ham_kwargs=dict(MD_R=4), **common)
    assert isinstance(ham.context_block, Hamburger) and ham.context_block is ham.hamburger
    with pytest.raises(AttributeError):
        ham.context_block = None
    nl = NonLocalHead(**common)
    assert isinstance(nl.context_block, NonLocalBase)
