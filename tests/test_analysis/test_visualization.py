"""nlseg.analysis.visualization (tools/analysis/visualize.py): PNGs of the right size for one head
of each family (demo configs, random init, a generated image), and affinity rows that agree with
the blocks' own forward computation."""
import os.path as osp

import numpy as np
import pytest
import torch

from tests.helpers import ROOT

DEMO = 'configs/demo/{}_r18s3-d8_450iter_synthetic-context-64x64.py'


@pytest.fixture(scope='module')
def image():
    from nlseg.datasets.synthetic_context_generator import render_sample
    img, _ = render_sample(np.random.default_rng(3), size=96)
    return img[:, :80]  # not square: checks height and width are not swapped


@pytest.mark.parametrize('config,suffix,panels,options', [
    ('arnl', 'affinity', 5, {}),  # input, prediction, 2 queries, lambda
    ('ham-nmf', 'atoms', 3, {}),
    ('nltv-fcn', 'nltv', 4, {'model.decode_head.nltv.test_iters': 20}),
])
def test_visualize_writes_pngs_of_the_right_size(tmp_path, image, config, suffix, panels,
                                                  options):
    import matplotlib.image as mpimg
    from nlseg.analysis.visualization import MIN_PANEL_PX, TITLE_PX, figure_size, visualize

    torch.manual_seed(0)
    paths = visualize(osp.join(ROOT, DEMO.format(config)), None, image=image,
                      out_dir=str(tmp_path), cfg_options=options or None)
    assert paths == [str(tmp_path / f'{DEMO.format(config)[13:-3]}_{suffix}.png')]
    png = mpimg.imread(paths[0])
    scale = -(-MIN_PANEL_PX // 96)  # the longer side (96) scaled to >= MIN_PANEL_PX
    assert png.shape[:2] == figure_size((96, 80), panels) == (96 * scale + TITLE_PX,
                                                               panels * 80 * scale)
    # not blank: the panels carry the picture (many distinct colours)
    assert len(np.unique(png[TITLE_PX:, :, :3].reshape(-1, 3), axis=0)) > 50


def test_queries_outside_the_image_are_rejected(tmp_path, image):
    from nlseg.analysis.visualization import visualize
    with pytest.raises(ValueError, match='outside'):
        visualize(osp.join(ROOT, DEMO.format('nl')), image=image, out_dir=str(tmp_path),
                  queries=[(100, 3)])


def _check_rows_against_forward(block, x, value_of, aggregate):
    """rows @ values == the block's own aggregation at the chosen queries."""
    from nlseg.analysis.visualization import query_affinity
    index = [0, 7, 19]
    rows = query_affinity(block, x, index)
    values = value_of(x)  # (M, Cv) on the key grid
    expected = aggregate(x)[index]  # (Q, Cv)
    got = rows.reshape(len(index), -1).double() @ values.double()
    torch.testing.assert_close(got, expected.double(), rtol=1e-4, atol=1e-6)
    return rows


def _tokens(t):
    return t.flatten(2).transpose(1, 2)[0]


@pytest.mark.parametrize('mode,sub_sample', [('embedded_gaussian', False),
                                             ('gaussian', True), ('dot_product', False),
                                             ('concatenation', True)])
def test_non_local_rows_match_the_block(mode, sub_sample):
    from nlseg.models.blocks import NonLocalBlock
    torch.manual_seed(0)
    block = NonLocalBlock(8, mode=mode, sub_sample=sub_sample).eval()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(1, 8, 5, 6)

    def aggregate(x):
        q, k = block.query_key(x)
        return block.aggregate(q, k, _tokens(block.g(x))[None])[0]
    rows = _check_rows_against_forward(block, x, lambda x: _tokens(block.g(x)), aggregate)
    assert rows.shape == ((3, 2, 3) if sub_sample else (3, 5, 6))
    if mode in ('gaussian', 'embedded_gaussian'):
        torch.testing.assert_close(rows.sum((1, 2)), torch.ones(3))


def test_arnl_rows_and_lambda_match_the_block():
    from nlseg.analysis.visualization import lambda_map

    from nlseg.models.blocks import AdaptiveNonLocalBlock
    torch.manual_seed(0)
    block = AdaptiveNonLocalBlock(8).eval()
    torch.nn.init.normal_(block.lambda_x.weight, std=0.5)
    x = torch.randn(1, 8, 5, 6)

    def aggregate(x):
        q, k = block.query_key(x)
        return block.aggregate(q, k, _tokens(block.g(x))[None])[0]
    _check_rows_against_forward(block, x, lambda x: _tokens(block.g(x)), aggregate)
    torch.testing.assert_close(lambda_map(block, x), block.lambda_x(x)[0, 0])


def test_ns_rows_match_the_stage():
    from nlseg.ops.attention import softmax_attention

    from nlseg.models.blocks import NonLocalStage
    torch.manual_seed(0)
    stage = NonLocalStage(8, num_units=2).eval()
    for p in stage.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(1, 8, 5, 6)
    g = stage.units[0].g

    def aggregate(x):
        q, k = stage.query_key(x)
        return softmax_attention(q, k, _tokens(g(x))[None], stage.scale)[0]
    _check_rows_against_forward(stage, x, lambda x: _tokens(g(x)), aggregate)


@pytest.mark.parametrize('normalization', ['symmetric', 'random_walk'])
def test_snl_rows_match_the_block(normalization):
    from nlseg.models.blocks import SpectralNonLocalBlock
    from nlseg.ops.affinity import relu_dot_attention
    torch.manual_seed(0)
    block = SpectralNonLocalBlock(8, generalized=True, affinity=normalization).eval()
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(1, 8, 5, 6)

    def aggregate(x):
        t, p, z = (_tokens(m(x))[None] for m in (block.theta, block.phi, block.g))
        return relu_dot_attention(t, p, z, normalization)[0]
    _check_rows_against_forward(block, x, lambda x: _tokens(block.g(x)), aggregate)


def test_query_affinity_is_the_blocks_dense_affinity_and_refuses_other_modules():
    from nlseg.analysis.visualization import query_affinity

    from nlseg.models.blocks import Hamburger, NonLocalBlock
    block = NonLocalBlock(8, sub_sample=True).eval()
    x = torch.randn(2, 8, 7, 6)
    rows = query_affinity(block, x, [3, 40])
    assert rows.shape == (2, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(rows.reshape(2, 9), block.dense_affinity(x[:1])[0, [3, 40]])
    with pytest.raises(TypeError, match='needs an NL-family block'):
        query_affinity(Hamburger(8, ham_channels=8, ham_kwargs=dict(MD_R=4)), x, [0])


def test_default_queries_and_atom_assignment():
    from nlseg.analysis.visualization import atom_assignment, default_queries
    pred = np.zeros((20, 30), dtype=np.int64)
    pred[2:5, 2:5] = 1
    pred[10:18, 20:28] = 2  # the largest non-background region, centre (13.5, 23.5)
    queries = default_queries(pred)
    assert queries[0] in {(13, 23), (13, 24), (14, 23), (14, 24)}
    assert queries[1] == (10, 15)
    codes = torch.zeros(2, 6, 4)
    codes[0, torch.arange(6), torch.tensor([3, 1, 0, 2, 2, 1])] = 1
    assert atom_assignment(codes, (2, 3)).tolist() == [[3, 1, 0], [2, 2, 1]]
