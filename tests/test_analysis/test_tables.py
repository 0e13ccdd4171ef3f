"""The rows of the real-data tables: each run's config, with its options, builds the model the
row names and runs it; the paper scale uses the method configs; the WBC fine-tunes start from
the stage-1 checkpoint."""
import copy
import os.path as osp

import pytest
import torch

from nlseg.analysis import camvid_table, wbc_table
from nlseg.analysis.seed_table import CHECKPOINT_OF

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def built(run, checkpoint=None):
    """The model of ``run`` (its config with its options), SyncBN as BN, no pretrained
    weights; ``checkpoint-of:`` placeholders replaced by ``checkpoint``."""
    import nlseg  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from tests.helpers import cpu_model_cfg

    def resolve(value):
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, str) and value.startswith(CHECKPOINT_OF):
            return checkpoint
        return value

    cfg = Config.fromfile(run.config)
    cfg.merge_from_dict(resolve(copy.deepcopy(run.options)))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cpu_model_cfg(cfg.model.to_dict()))
    return cfg, model


HEAD_TYPES = {'fcn': 'FCNHead', 'nl': 'NonLocalHead', 'arnl': 'ARNLHead', 'ns': 'NSHead',
              'snl': 'SNLHead', 'gsnl': 'GSNLHead', 'ham-nmf': 'HamburgerHead',
              'ham-vq': 'HamburgerHead', 'ham-cd': 'HamburgerHead', 'nltv-fcn': 'NLTVHead',
              'mmseg-nl': 'NLHead', 'mmseg-lightham': 'LightHamHead', 'mmseg-psp': 'PSPHead',
              'mmseg-da': 'DAHead', 'mmseg-ema': 'EMAHead'}


def test_camvid_rows_cover_the_issue():
    assert set(camvid_table.ROW_NAMES) == set(HEAD_TYPES)
    for info in camvid_table.ROWS:
        assert all(other in camvid_table.ROW_NAMES for other in info.compare_to)


@pytest.mark.parametrize('row', camvid_table.ROW_NAMES)
def test_camvid_cpu_row_builds_and_trains_a_step(row):
    runs = camvid_table.cpu_runs(ROOT, '/data/camvid', [0, 1], rows=[row])
    assert [(r.row, r.seed) for r in runs] == [(row, 0), (row, 1)]
    cfg, model = built(runs[0])
    assert type(model.decode_head).__name__ == HEAD_TYPES[row]
    assert cfg.train_dataloader.dataset.data_root == '/data/camvid'
    assert cfg.train_cfg.max_iters == 1500 and cfg.val_cfg is None
    assert [e['type'] for e in cfg.test_evaluator] == ['ClassIoUMetric',
                                                       'IsolatedRegionMetric', 'REScoreMetric']
    head = model.decode_head.base_head if row == 'nltv-fcn' else model.decode_head
    assert head.num_classes == 11
    assert type(head.loss_decode).__name__ == 'ClassWeightedCrossEntropyLoss'
    if row == 'nltv-fcn':
        assert model.decode_head.graph_source == 'image'
        assert model.decode_head.nltv.k == 10
        assert type(model.backbone).__name__ == 'WithImageLevel'
    model.train()
    torch.manual_seed(0)
    out = model(torch.randn(2, 3, 120, 160), mode='tensor')
    if row == 'mmseg-da':  # DAHead returns (pam_cam, pam, cam) in training
        out = out[0]
    assert out.shape == (2, 11, 15, 20) and torch.isfinite(out).all()
    out.float().mean().backward()


def test_camvid_rows_share_width_and_hamburger_settings():
    """The mmseg rows have the nlseg rows' width, LightHamHead the Hamburger row's rank and
    steps, every row the same loss."""
    runs = {r.row: r for r in camvid_table.cpu_runs(ROOT, 'd', [0])}
    heads = {row: built(run)[0].model.decode_head for row, run in runs.items()}
    # LightHamHead takes the row's rank and steps (mmseg's NMF2D keys); the nlseg row's
    # grad='bptt' is what mmseg's NMF2D always does
    nmf = heads['ham-nmf']
    assert heads['mmseg-lightham'].ham_kwargs == {
        k: v for k, v in nmf.ham_kwargs.items() if k != 'grad'}
    assert nmf.ham_kwargs['grad'] == 'bptt' and nmf.kernel_size == 1 and nmf.trailing_relu
    assert heads['mmseg-lightham'].ham_channels == heads['ham-nmf'].ham_channels == 64
    for row, head in heads.items():
        head = head.base_head if row == 'nltv-fcn' else head
        assert head.channels == 64, row
        assert head.loss_decode == heads['fcn'].loss_decode, row


def test_camvid_pipeline_check_options():
    run = camvid_table.cpu_runs(ROOT, 'd', [0], rows=['nl'], iters=5, test_images=3)[0]
    cfg = built(run)[0]
    assert cfg.train_cfg.max_iters == cfg.param_scheduler[0].end == 5
    assert cfg.test_dataloader.dataset.indices == 3


@pytest.mark.parametrize('row', ['fcn', 'ham-nmf', 'nltv-fcn', 'mmseg-lightham', 'mmseg-ema'])
def test_camvid_paper_scale_uses_the_method_configs(row):
    runs = camvid_table.paper_runs(ROOT, 'd', [0], depth=101, rows=[row], pretrained=False)
    run = runs[0]
    folder = camvid_table.FOLDERS.get(row, 'nl')
    slug = row if row in camvid_table.FOLDERS else 'nl'
    assert run.config == osp.join(ROOT, 'configs', folder,
                                  f'{slug}_r101-d8_4xb4-20k_camvid-360x480.py')
    cfg, model = built(run)
    assert cfg.train_cfg.max_iters == 20000 and cfg.model.pretrained is None
    assert cfg.model.backbone.get('depth', None) in (101, None)
    assert type(model.decode_head).__name__ == HEAD_TYPES[row]
    head = model.decode_head.base_head if row == 'nltv-fcn' else model.decode_head
    assert head.num_classes == 11 and head.in_channels in (2048, [2048])


def test_camvid_errors():
    with pytest.raises(ValueError, match='rows must be a non-empty list'):
        camvid_table.cpu_runs(ROOT, 'd', [0], rows=['psp'])
    with pytest.raises(ValueError, match='depth must be 50 or 101'):
        camvid_table.paper_runs(ROOT, 'd', [0], depth=18)
    with pytest.raises(ValueError, match='needs ham_kwargs'):
        camvid_table.mmseg_head('mmseg-lightham', 64, 64, 2, 11, {}, {})
    with pytest.raises(ValueError, match="row must be one of \\['fcn', 'mmseg-nl'"):
        camvid_table.mmseg_head('nl', 64, 64, 2, 11, {}, {})


def test_wbc_runs_bring_stage_one_and_start_from_it(tmp_path):
    runs = wbc_table.runs(ROOT, '/data/wbc', [0, 1], rows=['nltv-ft'])
    assert [(r.row, r.seed) for r in runs] == [('unet', 0), ('unet', 1), ('nltv-ft', 0),
                                               ('nltv-ft', 1)]
    assert runs[2].needs() == ['unet', 'unet'] and runs[0].needs() == []
    # a stage-1 checkpoint to start from
    _, unet = built(runs[0])
    torch.nn.init.constant_(unet.decode_head.conv_seg.bias, 0.25)
    checkpoint = str(tmp_path / 'stage1.pth')
    torch.save(dict(state_dict=unet.state_dict(), meta=dict()), checkpoint)
    for row, head_type in (('unet-ft', 'FCNHead'), ('ltv-ft', 'NLTVHead'),
                           ('nltv-ft', 'NLTVHead')):
        run = wbc_table.runs(ROOT, 'd', [0], rows=[row])[-1]
        cfg, model = built(run, checkpoint)
        assert type(model.decode_head).__name__ == head_type
        assert cfg.train_cfg.max_iters == wbc_table.FINETUNE_ITERS
        assert cfg.optim_wrapper.optimizer.lr == wbc_table.FINETUNE_LR
        assert [s['type'] for s in cfg.param_scheduler] == ['ConstantLR']
        model.init_weights()
        head = model.decode_head.base_head if head_type == 'NLTVHead' else model.decode_head
        assert torch.equal(head.conv_seg.bias, torch.full((3,), 0.25))
        if row == 'nltv-ft':
            assert model.decode_head.nltv.k == 20 and model.decode_head.graph_source == 'image'
        if row == 'ltv-ft':
            assert model.decode_head.graph_source == 'grid'
        model.train()
        out = model(torch.rand(1, 3, 48, 48) * 255, mode='tensor')
        assert out.shape == (1, 3, 48, 48) and torch.isfinite(out).all()


def test_wbc_shortened_fine_tune_keeps_one_scheduler():
    run = wbc_table.runs(ROOT, 'd', [0], rows=['ltv-ft'], iters=4)[-1]
    cfg = built(run, 'x.pth')[0]
    assert cfg.train_cfg.max_iters == 4
    assert len(cfg.param_scheduler) == 1 and cfg.param_scheduler[0].end == 4
    with pytest.raises(ValueError, match='rows must be'):
        wbc_table.runs(ROOT, 'd', [0], rows=['nltv'])


def test_real_data_configs_are_the_tables():
    """configs/real_data holds the tables' recipes and nothing else (they are neither matrix
    nor paper-recipe configs)."""
    import glob
    found = {osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', 'real_data',
                                                             '*.py'))}
    assert found == {camvid_table.CPU_CONFIG, wbc_table.CONFIG}
