"""The demo: every demo config builds and trains a step; tools/run_demo.py's scheduling,
aggregation, claims and tables on synthetic rows; the quick variant end to end."""
import glob
import json
import math
import os.path as osp
import random
import sys

import pytest
import torch

from tests.helpers import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools'))
import run_demo  # noqa: E402

DEMO_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))
CONTEXT_CONFIGS = [p for p in DEMO_CONFIGS if '_synthetic-context-' in osp.basename(p)]
REGIONS_CONFIGS = [p for p in DEMO_CONFIGS if '_synthetic-regions-' in osp.basename(p)]
EXPECTED_SLUGS = {'fcn', 'nl', 'arnl', 'ns', 'snl', 'gsnl', 'ham-nmf', 'ham-vq', 'ham-cd',
                  'nltv-fcn', 'mmseg-nl', 'mmseg-lightham', 'snl-authors', 'gsnl-authors',
                  'ns-authors'}
EXPECTED_REGIONS_SLUGS = {'fcn-regions', 'nltv-regions'}


def slug(path):
    return osp.basename(path).split('_')[0]


def test_every_head_has_a_demo_config():
    assert {slug(p) for p in CONTEXT_CONFIGS} == EXPECTED_SLUGS
    # the regions task is optional (being built); when it is there, it is complete
    if REGIONS_CONFIGS:
        assert {slug(p) for p in REGIONS_CONFIGS} == EXPECTED_REGIONS_SLUGS
    # every demo config belongs to exactly one task
    assert sorted(CONTEXT_CONFIGS + REGIONS_CONFIGS) == DEMO_CONFIGS
    assert {run_demo.config_task(p) for p in CONTEXT_CONFIGS} == {'context'}


def _input_size(cfg):
    """The (H, W) a demo config's model sees: the data preprocessor's size, else the
    data set's crop size."""
    size = cfg.model.data_preprocessor.get('size') or cfg.get('crop_size')
    assert size is not None, 'the config names neither data_preprocessor.size nor crop_size'
    return tuple(size)


def _output_stride(cfg):
    """Output stride of the demo model: 4 (stem) x the product of the ResNet stage strides;
    1 for the full-resolution UNet models."""
    backbone = cfg.model.backbone
    backbone = backbone.get('backbone', backbone)  # WithImageLevel wraps the real one
    if 'strides' in backbone and 'ResNet' in backbone['type']:
        return 4 * math.prod(backbone['strides'])
    return 1


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=slug)
def test_demo_config_builds_and_trains_one_step(path):
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401
    from tests.helpers import random_batch
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['nlseg'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.get('pretrained') is None
    # run_demo reads the metrics of the final validation: it must happen at max_iters
    assert cfg.train_cfg.val_interval == cfg.train_cfg.max_iters
    h, w = _input_size(cfg)
    assert h == w
    num_classes = cfg.model.decode_head.get('num_classes') or \
        cfg.model.decode_head.base_head.num_classes
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(random_batch(num_images=2, size=h, num_classes=num_classes),
                                optim)
    assert torch.isfinite(log_vars['loss'])
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w), mode='tensor')
    stride = _output_stride(cfg)
    assert out.shape == (1, num_classes, h // stride, w // stride)


# ---------------------------------------------------------------- run_demo on synthetic rows


def row(name, seed, miou, task='context', **metrics):
    """A finished run as run_demo.train_one returns it."""
    return dict(name=name, slug=name.split('_')[0], task=task, seed=seed,
                metrics={'mIoU': miou, 'IoU.background': 90.0 + seed, **metrics},
                params_m=1.0, sec_per_iter=0.1 * (seed + 1), train_seconds=10.0 * (seed + 1),
                pictures=[])


CONTEXT_ROWS = [row('fcn_x', 0, 30.0), row('fcn_x', 1, 34.0), row('fcn_x', 2, 32.0),
                row('nl_x', 0, 90.0), row('nl_x', 1, 41.0), row('nl_x', 2, 95.0),
                row('snl_x', 0, 41.0), row('snl_x', 1, 42.0)]


def test_aggregate_mean_spread_and_per_seed_values():
    entries = run_demo.aggregate(CONTEXT_ROWS)['context']
    assert [e['slug'] for e in entries] == ['fcn', 'nl', 'snl']
    nl = entries[1]
    assert nl['n'] == 3 and nl['seeds'] == [0, 1, 2]
    assert nl['miou'] == [90.0, 41.0, 95.0]
    assert nl['miou_mean'] == pytest.approx(75.333333)
    assert (nl['miou_min'], nl['miou_max']) == (41.0, 95.0)
    assert nl['miou_std'] == pytest.approx(29.838454, rel=1e-6)  # sample std (n - 1)
    assert nl['iou']['background'] == pytest.approx(91.0)
    assert nl['sec_per_iter'] == pytest.approx(0.2)
    assert nl['train_seconds'] == pytest.approx(20.0)
    assert nl['delta'] == pytest.approx(75.333333 - 32.0)
    assert entries[2]['miou_std'] == pytest.approx(math.sqrt(0.5))
    assert run_demo.aggregate([row('nl_x', 0, 50.0)])['context'][0]['miou_std'] == 0.0


def test_aggregate_does_not_depend_on_finish_order():
    expected = run_demo.aggregate(CONTEXT_ROWS)
    shuffled = list(CONTEXT_ROWS)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert run_demo.aggregate(shuffled) == expected


def test_context_claim_is_seed_mean_at_least_baseline_plus_10():
    entries = {e['slug']: e for e in run_demo.aggregate(CONTEXT_ROWS)['context']}
    assert entries['fcn']['is_baseline'] and entries['fcn']['meets_claim'] is None
    assert entries['nl']['meets_claim'] is True  # 75.3 >= 32 + 10, despite one bad seed
    assert entries['snl']['meets_claim'] is False  # 41.5 < 32 + 10
    # exactly on the margin meets it; just under does not
    on = run_demo.aggregate([row('fcn_x', 0, 30.0), row('a_x', 0, 40.0)])['context']
    under = run_demo.aggregate([row('fcn_x', 0, 30.0), row('a_x', 0, 39.99)])['context']
    assert on[1]['meets_claim'] is True and under[1]['meets_claim'] is False


def test_no_baseline_means_no_delta_and_no_claim():
    entries = run_demo.aggregate([row('nl_x', 0, 90.0)])['context']
    assert entries[0]['delta'] is None and entries[0]['meets_claim'] is None
    table = run_demo.format_table(entries, 'context')
    assert '| nl | 1 | 90.00 |' in table


def regions_rows(miou, isolated, re_score):
    base = [row('fcn-regions_x', s, 80.0, 'regions', isolated_regions=5.0, **{'re/RE': 3.0})
            for s in (0, 1)]
    return base + [row('nltv-regions_x', s, miou, 'regions', isolated_regions=isolated,
                       **{'re/RE': re_score}) for s in (0, 1)]


@pytest.mark.parametrize('miou,isolated,re_score,expected', [
    (80.0, 1.0, 1.5, True),     # fewer regions, lower RE, equal mIoU
    (79.5, 1.0, 1.5, True),     # at the tolerance
    (79.4, 1.0, 1.5, False),    # mIoU lost
    (85.0, 5.0, 1.5, False),    # not fewer isolated regions
    (85.0, 1.0, 3.5, False),    # higher RE
])
def test_regions_claim(miou, isolated, re_score, expected):
    entries = run_demo.aggregate(regions_rows(miou, isolated, re_score))['regions']
    assert [e['slug'] for e in entries] == ['fcn-regions', 'nltv-regions']
    assert entries[1]['isolated_regions'] == pytest.approx(isolated)
    assert entries[1]['RE'] == pytest.approx(re_score)  # found under the 're/' prefix
    assert entries[1]['meets_claim'] is expected


def test_tables_per_task_with_regions_columns():
    tasks = run_demo.aggregate(CONTEXT_ROWS + regions_rows(81.0, 1.0, 1.5))
    assert list(tasks) == ['context', 'regions']
    context = run_demo.format_table(tasks['context'], 'context')
    regions = run_demo.format_table(tasks['regions'], 'regions')
    header = context.splitlines()[0]
    for column in ('config', '| n |', 'mIoU mean', 'min-max', 'std', 'per seed',
                   'delta vs baseline', 'meets claim', 'IoU background', 'params (M)',
                   's/iter', 'train s'):
        assert column in header
    assert 'isolated regions' not in header
    assert 'isolated regions / image' in regions.splitlines()[0]
    assert '| fcn | 3 | 32.00 | 30.00-34.00 | 2.00 | 30.0 / 34.0 / 32.0 | - | baseline |' \
        in context
    assert '| nl | 3 | 75.33 | 41.00-95.00 | 29.84 | 90.0 / 41.0 / 95.0 | +43.33 | yes |' \
        in context
    assert '| nltv-regions | 2 | 81.00 |' in regions and '| yes |' in regions
    both = run_demo.format_tables(tasks)
    assert both.index('Long-range context') < both.index('Regions')


def test_schedule_puts_baselines_first_then_slow_configs_then_seed_by_seed():
    configs = ['c/nl_a_synthetic-context-1.py', 'c/fcn_a_synthetic-context-1.py',
               'c/nltv-regions_a_synthetic-regions-1.py',
               'c/fcn-regions_a_synthetic-regions-1.py']
    runs = run_demo.schedule_runs(configs, [0, 1])
    assert [(slug(c), s) for c, s in runs] == [
        ('fcn', 0), ('fcn', 1), ('fcn-regions', 0), ('fcn-regions', 1),
        ('nltv-regions', 0), ('nltv-regions', 1), ('nl', 0), ('nl', 1)]
    with pytest.raises(ValueError, match='seeds'):
        run_demo.schedule_runs(configs, [])


def test_config_task_from_the_name():
    assert run_demo.config_task('x/nl_r18_600iter_synthetic-context-96x96.py') == 'context'
    assert run_demo.config_task('x/fcn-regions_u_300iter_synthetic-regions-64x64.py') == \
        'regions'
    with pytest.raises(ValueError, match='no demo task'):
        run_demo.config_task('x/nl_r50-d8_4xb4-40k_voc12aug-512x512.py')


def test_read_scalars_takes_the_final_validation(tmp_path):
    path = tmp_path / 'scalars.json'
    records = [dict(loss=1.0, time=9.0, iter=5, step=5),   # warm-up interval, dropped
               dict(loss=0.9, time=0.3, iter=10, step=10),
               dict(loss=0.8, time=0.1, iter=15, step=15),
               dict(loss=0.7, time=0.2, iter=20, step=20),
               dict(mIoU=55.5, **{'IoU.a': 1.0}, data_time=0.1, time=0.05, step=20)]
    path.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    metrics, sec_per_iter = run_demo.read_scalars(str(path))
    assert metrics == {'mIoU': 55.5, 'IoU.a': 1.0, 'step': 20}
    assert sec_per_iter == pytest.approx(0.2)
    path.write_text(json.dumps(records[0]) + '\n')
    with pytest.raises(ValueError, match='no validation record'):
        run_demo.read_scalars(str(path))


def test_schedule_options_and_arguments():
    assert run_demo.iteration_options(1200) == [
        'train_cfg.max_iters=1200', 'train_cfg.val_interval=1200',
        'default_hooks.checkpoint.interval=1200', 'param_scheduler.0.end=1200',
        'default_hooks.logger.interval=50']
    with pytest.raises(ValueError, match='iters'):
        run_demo.iteration_options(0)
    default = run_demo.parse_args([])
    assert default.seeds == [0, 1, 2, 3, 4] and default.schedule_options == []
    assert run_demo.parse_args(['--full']).schedule_iters == run_demo.FULL_ITERS
    assert run_demo.parse_args(['--iters', '7']).schedule_options[0] == 'train_cfg.max_iters=7'
    quick = run_demo.parse_args(['--quick'])
    assert quick.seeds == [0] and quick.schedule_iters == run_demo.QUICK_ITERS
    assert run_demo.parse_args(['--quick', '--seeds', '3', '4']).seeds == [3, 4]
    for bad in (['--jobs', '0'], ['--full', '--iters', '5'], ['--seeds', '1', '1'],
                ['--data-root', 'nope=/tmp']):
        with pytest.raises(SystemExit):
            run_demo.parse_args(bad)


def test_thread_env_divides_the_cores():
    assert run_demo.thread_env(2, cores=2)['OMP_NUM_THREADS'] == '1'
    assert run_demo.thread_env(2, cores=8)['MKL_NUM_THREADS'] == '4'
    assert run_demo.thread_env(4, cores=2)['OMP_NUM_THREADS'] == '1'
    with pytest.raises(ValueError, match='jobs'):
        run_demo.thread_env(0)


def test_progress_line():
    line = run_demo.progress_line(7, 33, dict(row('nl_x', 1, 91.23), train_seconds=34.4),
                                  130.0)
    assert line == '[demo 7/33] nl seed 1: mIoU 91.2 (34 s) | elapsed 2m10s'


def test_bar_chart_writes_one_panel_per_task(tmp_path):
    import matplotlib.image as mpimg
    one = run_demo.bar_chart(run_demo.aggregate(CONTEXT_ROWS), str(tmp_path / 'one.png'))
    two = run_demo.bar_chart(run_demo.aggregate(CONTEXT_ROWS + regions_rows(81.0, 1.0, 1.5)),
                             str(tmp_path / 'two.png'))
    # the regions task adds its mIoU panel and its isolated-regions panel: a wider figure
    assert mpimg.imread(two).shape[1] > mpimg.imread(one).shape[1]


def test_main_keeps_the_other_runs_when_one_fails(tmp_path, monkeypatch, capsys):
    """main() without training: a stand-in train_one that finishes in a shuffled order
    and fails for one run; the others are aggregated, the failure is named, exit 1."""
    import time as time_module
    configs = [p for p in CONTEXT_CONFIGS if slug(p) in ('fcn', 'nl')]
    launched = []

    def fake_train_one(config, seed, args, data_root, env):
        launched.append((slug(config), seed))
        time_module.sleep(random.Random(len(launched)).uniform(0, 0.05))
        if (slug(config), seed) == ('nl', 1):
            raise RuntimeError('tools/train.py failed (exit 1); log x/train.out:\ntail')
        return dict(row(osp.basename(config)[:-3], seed, 30.0 + 50 * (slug(config) == 'nl')
                        + seed), config=config)

    monkeypatch.setattr(run_demo, 'train_one', fake_train_one)
    monkeypatch.setattr(run_demo, 'count_parameters', lambda config: 0.5)
    monkeypatch.setattr(run_demo, 'prepare_data', lambda task, args: str(tmp_path))
    work = str(tmp_path / 'demo')
    assert run_demo.main(['--work-dir', work, '--configs', *configs, '--seeds', '0', '1',
                          '--jobs', '2', '--no-vis']) == 1
    assert sorted(launched[:2]) == [('fcn', 0), ('fcn', 1)]  # the baseline first
    out = capsys.readouterr().out
    assert 'nl seed 1: FAILED' in out and '[demo 4/4]' in out
    with open(osp.join(work, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['meta']['failures'] == [
        'nl seed 1: tools/train.py failed (exit 1); log x/train.out:']
    entries = summary['aggregates']['context']
    assert [(e['slug'], e['n'], e['miou']) for e in entries] == [
        ('fcn', 2, [30.0, 31.0]), ('nl', 1, [80.0])]
    assert entries[1]['meets_claim'] is True and entries[1]['params_m'] == 0.5
    md = open(osp.join(work, 'summary.md')).read()
    assert '## Failed runs' in md and '- nl seed 1: tools/train.py failed' in md
    assert osp.getsize(osp.join(work, 'miou.png')) > 0


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    configs = [p for p in CONTEXT_CONFIGS if slug(p) in ('fcn', 'snl')]
    work = str(tmp_path / 'demo')
    assert run_demo.main(['--quick', '--work-dir', work, '--configs', *configs,
                          '--seeds', '0', '1', '--jobs', '2']) == 0
    with open(osp.join(work, 'summary.json')) as f:
        summary = json.load(f)
    runs = summary['runs']
    assert sorted((r['slug'], r['seed']) for r in runs) == [
        ('fcn', 0), ('fcn', 1), ('snl', 0), ('snl', 1)]
    for run in runs:
        assert 0 <= run['metrics']['mIoU'] <= 100
        assert run['iters'] == run['metrics']['step'] == 20
        assert osp.isfile(osp.join(work, run['checkpoint']))
        # pictures for the first seed only
        assert bool(run['pictures']) == (run['seed'] == 0)
        assert all(osp.getsize(osp.join(work, p)) > 0 for p in run['pictures'])
    entries = summary['aggregates']['context']
    assert [(e['slug'], e['n']) for e in entries] == [('fcn', 2), ('snl', 2)]
    assert summary['meta']['jobs'] == 2 and summary['meta']['threads_per_job'] >= 1
    md = open(osp.join(work, 'summary.md')).read()
    assert '| fcn | 2 |' in md and '| snl | 2 |' in md
    assert 'meets claim' in md and 'wall time' in md and '![mIoU per head](miou.png)' in md
    assert osp.getsize(osp.join(work, 'miou.png')) > 0



def test_anchor_column_reads_each_head_against_its_anchor():
    rows = CONTEXT_ROWS + [row('mmseg-nl_x', 0, 80.0), row('mmseg-nl_x', 1, 85.0),
                           row('mmseg-nl_x', 2, 88.0), row('snl-authors_x', 0, 50.0),
                           row('snl-authors_x', 1, 60.0)]
    tasks = run_demo.aggregate(rows)
    by_slug = {e['slug']: e for e in tasks['context']}
    nl, snl = by_slug['nl'], by_slug['snl']
    assert nl['anchor'] == 'mmseg-nl' and nl['anchor_reading'] == 'within spread'
    assert nl['anchor_delta'] == pytest.approx((226.0 - 253.0) / 3)
    assert snl['anchor'] == 'snl-authors' and snl['anchor_reading'] == 'worse'
    assert snl['anchor_delta'] == pytest.approx(41.5 - 55.0)
    assert by_slug['fcn']['anchor'] is None and by_slug['mmseg-nl']['anchor'] is None
    table = run_demo.format_table(tasks['context'], 'context')
    assert 'vs anchor' in table.splitlines()[0]
    assert '| snl-authors -13.50 (worse) |' in table
    better = run_demo.aggregate(rows + [row('snl_x', 2, 99.0)] + [
        row('snl-authors_x', 2, 10.0)])['context']
    assert {e['slug']: e for e in better}['snl']['anchor_reading'] == 'within spread'
    assert run_demo.anchor_reading(dict(miou_min=61.0, miou_max=70.0),
                                   dict(miou_min=50.0, miou_max=60.0)) == 'better'
    # no anchor row in the run: no column
    assert 'vs anchor' not in run_demo.format_table(
        run_demo.aggregate(CONTEXT_ROWS)['context'], 'context')
