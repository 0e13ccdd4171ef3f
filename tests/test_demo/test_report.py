"""nlseg.demo.report on synthetic rows: aggregates over seeds, the claims, the anchor column,
the tables, the progress line and the chart."""
import math
import random

import pytest

from nlseg.demo import report
from tests.test_demo.rows import CONTEXT_ROWS, regions_rows, row


def test_aggregate_mean_spread_and_per_seed_values():
    entries = report.aggregate(CONTEXT_ROWS)['context']
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
    assert report.aggregate([row('nl_x', 0, 50.0)])['context'][0]['miou_std'] == 0.0


def test_aggregate_does_not_depend_on_finish_order():
    expected = report.aggregate(CONTEXT_ROWS)
    shuffled = list(CONTEXT_ROWS)
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert report.aggregate(shuffled) == expected


def test_context_claim_is_seed_mean_at_least_baseline_plus_10():
    entries = {e['slug']: e for e in report.aggregate(CONTEXT_ROWS)['context']}
    assert entries['fcn']['is_baseline'] and entries['fcn']['meets_claim'] is None
    assert entries['nl']['meets_claim'] is True  # 75.3 >= 32 + 10, despite one bad seed
    assert entries['snl']['meets_claim'] is False  # 41.5 < 32 + 10
    # exactly on the margin meets it; just under does not
    on = report.aggregate([row('fcn_x', 0, 30.0), row('a_x', 0, 40.0)])['context']
    under = report.aggregate([row('fcn_x', 0, 30.0), row('a_x', 0, 39.99)])['context']
    assert on[1]['meets_claim'] is True and under[1]['meets_claim'] is False


def test_no_baseline_means_no_delta_and_no_claim():
    entries = report.aggregate([row('nl_x', 0, 90.0)])['context']
    assert entries[0]['delta'] is None and entries[0]['meets_claim'] is None
    table = report.format_table(entries, 'context')
    assert '| nl | 1 | 90.00 |' in table


@pytest.mark.parametrize('miou,isolated,re_score,expected', [
    (80.0, 1.0, 1.5, True),     # fewer regions, lower RE, equal mIoU
    (79.5, 1.0, 1.5, True),     # at the tolerance
    (79.4, 1.0, 1.5, False),    # mIoU lost
    (85.0, 5.0, 1.5, False),    # not fewer isolated regions
    (85.0, 1.0, 3.5, False),    # higher RE
])
def test_regions_claim(miou, isolated, re_score, expected):
    entries = report.aggregate(regions_rows(miou, isolated, re_score))['regions']
    assert [e['slug'] for e in entries] == ['fcn-regions', 'nltv-regions']
    assert entries[1]['isolated_regions'] == pytest.approx(isolated)
    assert entries[1]['RE'] == pytest.approx(re_score)  # found under the 're/' prefix
    assert entries[1]['meets_claim'] is expected


def test_tables_per_task_with_regions_columns():
    tasks = report.aggregate(CONTEXT_ROWS + regions_rows(81.0, 1.0, 1.5))
    assert list(tasks) == ['context', 'regions']
    context = report.format_table(tasks['context'], 'context')
    regions = report.format_table(tasks['regions'], 'regions')
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
    both = report.format_tables(tasks)
    assert both.index('Long-range context') < both.index('Regions')


def test_progress_line():
    line = report.progress_line(7, 33, dict(row('nl_x', 1, 91.23), train_seconds=34.4),
                                  130.0)
    assert line == '[demo 7/33] nl seed 1: mIoU 91.2 (34 s) | elapsed 2m10s'


def test_bar_chart_writes_one_panel_per_task(tmp_path):
    import matplotlib.image as mpimg
    one = report.bar_chart(report.aggregate(CONTEXT_ROWS), str(tmp_path / 'one.png'))
    two = report.bar_chart(report.aggregate(CONTEXT_ROWS + regions_rows(81.0, 1.0, 1.5)),
                             str(tmp_path / 'two.png'))
    # the regions task adds its mIoU panel and its isolated-regions panel: a wider figure
    assert mpimg.imread(two).shape[1] > mpimg.imread(one).shape[1]


def test_anchor_column_reads_each_head_against_its_anchor():
    rows = CONTEXT_ROWS + [row('mmseg-nl_x', 0, 80.0), row('mmseg-nl_x', 1, 85.0),
                           row('mmseg-nl_x', 2, 88.0), row('snl-authors_x', 0, 50.0),
                           row('snl-authors_x', 1, 60.0)]
    tasks = report.aggregate(rows)
    by_slug = {e['slug']: e for e in tasks['context']}
    nl, snl = by_slug['nl'], by_slug['snl']
    assert nl['anchor'] == 'mmseg-nl' and nl['anchor_reading'] == 'within spread'
    assert nl['anchor_delta'] == pytest.approx((226.0 - 253.0) / 3)
    assert snl['anchor'] == 'snl-authors' and snl['anchor_reading'] == 'worse'
    assert snl['anchor_delta'] == pytest.approx(41.5 - 55.0)
    assert by_slug['fcn']['anchor'] is None and by_slug['mmseg-nl']['anchor'] is None
    table = report.format_table(tasks['context'], 'context')
    assert 'vs anchor' in table.splitlines()[0]
    assert '| snl-authors -13.50 (worse) |' in table
    better = report.aggregate(rows + [row('snl_x', 2, 99.0)] + [
        row('snl-authors_x', 2, 10.0)])['context']
    assert {e['slug']: e for e in better}['snl']['anchor_reading'] == 'within spread'
    assert report.anchor_reading(dict(miou_min=61.0, miou_max=70.0),
                                   dict(miou_min=50.0, miou_max=60.0)) == 'better'
    # no anchor row in the run: no column
    assert 'vs anchor' not in report.format_table(
        report.aggregate(CONTEXT_ROWS)['context'], 'context')
