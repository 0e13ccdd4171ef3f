"""The report of a seed table: markdown (summary, readings, per-class IoU), JSON and a chart."""
from __future__ import annotations

import dataclasses
import json
import os
import os.path as osp
from typing import Optional, Sequence

from .seed_table import SUMMARY_METRICS, aggregate, compare


@dataclasses.dataclass(frozen=True)
class RowInfo:
    """What a report says about a row.

    Args:
        name: the row's name (as in :class:`~nlseg.analysis.seed_table.Run`).
        label: the row's title in the table.
        source: 'nlseg' or 'mmseg' (whose implementation), or free text.
        compare_to: the rows it is read against (baseline, anchor), in order.
    """
    name: str
    label: str
    source: str = 'nlseg'
    compare_to: tuple = ()


def _fmt(value: float, digits: int = 2) -> str:
    return 'n/a' if value != value else f'{value:.{digits}f}'


def summary_markdown(table: dict, rows: Sequence[RowInfo]) -> str:
    """The summary table: per row the seeds' mIoU (mean, min-max, std), the means of the
    other metrics, cost columns and the readings against its ``compare_to`` rows."""
    head = ['row', 'impl', 'seeds', 'mIoU mean', 'min-max', 'std', 'aAcc',
            'isolated / image', 'RE', 's/iter', 'test s', 'peak MB', 'params (M)',
            'reading (mIoU, beyond the seed spread)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for info in rows:
        if info.name not in table:
            continue
        t = table[info.name]
        m = t['metrics']
        miou = m.get('mIoU')
        readings = []
        for other in info.compare_to:
            if other in table and miou and 'mIoU' in table[other]['metrics']:
                label = next((r.label for r in rows if r.name == other), other)
                verdict = compare(miou, table[other]['metrics']['mIoU'])
                readings.append(f'{verdict} {"of" if verdict == "within spread" else "than"} '
                                f'{label}')
        cells = [info.label, info.source, ' '.join(map(str, t['seeds'])),
                 _fmt(miou['mean']) if miou else 'n/a',
                 f'{miou["min"]:.2f}-{miou["max"]:.2f}' if miou else 'n/a',
                 _fmt(miou['std']) if miou else 'n/a']
        for key, _, _ in SUMMARY_METRICS[1:]:
            digits = 3 if key == 're/RE' else 2
            cells.append(_fmt(m[key]['mean'], digits) if key in m else 'n/a')
        cells += [f'{t["s_per_iter"]:.3f}', _fmt(t['test_s'], 0), f'{t["peak_rss_mb"]:.0f}',
                  f'{t["params"] / 1e6:.3f}', '; '.join(readings) or '-']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def class_markdown(table: dict, rows: Sequence[RowInfo], classes: Sequence[str]) -> str:
    """Per-class IoU (seed means) of every row."""
    lines = ['| row | ' + ' | '.join(classes) + ' |', '|' + '---|' * (len(classes) + 1)]
    for info in rows:
        if info.name not in table:
            continue
        m = table[info.name]['metrics']
        lines.append(f'| {info.label} | ' + ' | '.join(
            _fmt(m[f'IoU.{c}']['mean'], 1) if f'IoU.{c}' in m else 'n/a' for c in classes)
            + ' |')
    return '\n'.join(lines)


def write_chart(table: dict, rows: Sequence[RowInfo], path: str, title: str,
                baseline: Optional[str] = None) -> Optional[str]:
    """mIoU per row: seed-mean bar, min-max error bar, the seeds as dots, the baseline's mean
    dashed; mmseg's rows in another colour. None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    shown = [r for r in rows if r.name in table and 'mIoU' in table[r.name]['metrics']]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(shown) + 1.2))
    for i, info in enumerate(shown):
        s = table[info.name]['metrics']['mIoU']
        color = '#d98c3a' if info.source == 'mmseg' else '#3a78b5'
        ax.barh(i, s['mean'], color=color, alpha=0.8)
        ax.errorbar(s['mean'], i, xerr=[[s['mean'] - s['min']], [s['max'] - s['mean']]],
                    color='black', capsize=3, lw=1)
        ax.plot(s['values'], [i] * len(s['values']), 'k.', ms=4)
    if baseline in table:
        ax.axvline(table[baseline]['metrics']['mIoU']['mean'], ls='--', color='grey', lw=1)
    ax.set_yticks(range(len(shown)), [r.label for r in shown])
    ax.invert_yaxis()
    ax.set_xlabel('mIoU (%): bar seed mean, whisker min-max, dots seeds')
    if any(r.source == 'mmseg' for r in shown):
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(color='#3a78b5', label='nlseg'),
                           Patch(color='#d98c3a', label='mmseg')], loc='lower right',
                  fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(results: Sequence[dict], rows: Sequence[RowInfo], out_dir: str, title: str,
                 preamble: str = '', classes: Sequence[str] = (),
                 baseline: Optional[str] = None) -> str:
    """``summary.md``, ``summary.json`` and ``miou.png`` in ``out_dir``; returns the
    markdown."""
    os.makedirs(out_dir, exist_ok=True)
    table = aggregate(results, [r.name for r in rows])
    chart = write_chart(table, rows, osp.join(out_dir, 'miou.png'), title, baseline)
    parts = [f'# {title}', preamble.strip(), summary_markdown(table, rows)]
    if classes:
        parts += ['Per-class IoU (seed means):', class_markdown(table, rows, classes)]
    if chart:
        parts.append('![mIoU per row](miou.png)')
    text = '\n\n'.join(p for p in parts if p) + '\n'
    with open(osp.join(out_dir, 'summary.md'), 'w') as f:
        f.write(text)
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(dict(title=title, rows=[dataclasses.asdict(r) for r in rows], table=table,
                       results=list(results)), f, indent=1)
    return text
