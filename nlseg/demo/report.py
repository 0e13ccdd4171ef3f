"""The demo's report: aggregates over seeds (means, spread, claims, anchors), the markdown
tables, the progress line, the chart (``miou.png``) and the summary files (``summary.md``,
``summary.json``) of :func:`nlseg.demo.runner.main`."""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import shlex
from typing import Optional, Sequence

from nlseg.analysis.seed_table import compare
from .tasks import ANCHORS, BASELINE_SLUGS, CONTEXT_MARGIN, TASKS, config_name, meets_claim


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float('nan')


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _class_names(rows: Sequence[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for key in row['metrics']:
            if key.startswith('IoU.') and key[4:] not in names:
                names.append(key[4:])
    return names


#: the regions task's extra metrics (IsolatedRegionMetric, REScoreMetric) and their columns
EXTRA_COLUMNS = {'isolated_regions': 'isolated regions / image', 'RE': 'RE'}


def metric_value(metrics: dict, name: str) -> Optional[float]:
    """The metric ``name`` of a run, also under an evaluator prefix (``re/RE``); None
    when the run has no such metric."""
    if name in metrics:
        return metrics[name]
    matches = [v for k, v in metrics.items() if k.endswith('/' + name)]
    return matches[0] if matches else None


def aggregate(rows: Sequence[dict], config_order: Optional[Sequence[str]] = None) -> dict:
    """Per task, one entry per config over its finished seeds: mIoU mean, min, max, std and
    per-seed values, per-class IoU means, isolated regions and RE means (when measured),
    params, s/iter and train seconds means, delta vs the task baseline's mean and whether
    the claim holds (None without a baseline row), and for a head with an anchor row
    (:data:`ANCHORS`) in the run: ``anchor``, ``anchor_delta`` (difference of the seed means)
    and ``anchor_reading`` ('better' / 'worse' when every seed is beyond every seed of the
    anchor, else 'within spread'). Rows are sorted by config (in
    ``config_order``, else baseline first then by slug) and by seed, so the result does not
    depend on the order the runs finished in."""
    order = list(config_order or [])

    def config_key(slug_name: tuple[str, str]):
        slug, name = slug_name
        rank = order.index(name) if name in order else len(order)
        return (slug not in BASELINE_SLUGS, rank, slug, name)

    tasks: dict[str, list[dict]] = {}
    by_config: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        by_config.setdefault((row['task'], row['slug'], row['name']), []).append(row)
    for task, slug, name in sorted(by_config, key=lambda k: (list(TASKS).index(k[0]),
                                                             *config_key(k[1:]))):
        runs = sorted(by_config[(task, slug, name)], key=lambda r: r['seed'])
        miou = [r['metrics']['mIoU'] for r in runs]
        entry = dict(name=name, slug=slug, task=task, n=len(runs),
                     seeds=[r['seed'] for r in runs], miou=miou, miou_mean=_mean(miou),
                     miou_min=min(miou), miou_max=max(miou), miou_std=_std(miou),
                     iou={c: _mean([r['metrics'].get(f'IoU.{c}', float('nan'))
                                    for r in runs]) for c in _class_names(runs)},
                     params_m=runs[0].get('params_m', float('nan')),
                     sec_per_iter=_mean([r['sec_per_iter'] for r in runs]),
                     train_seconds=_mean([r['train_seconds'] for r in runs]))
        for key in EXTRA_COLUMNS:
            values = [metric_value(r['metrics'], key) for r in runs]
            if all(v is not None for v in values):
                entry[key] = _mean(values)
        tasks.setdefault(task, []).append(entry)
    for task, entries in tasks.items():
        base = next((e for e in entries if e['slug'] == TASKS[task].baseline), None)
        for entry in entries:
            entry['is_baseline'] = entry is base
            entry['delta'] = entry['miou_mean'] - base['miou_mean'] if base else None
            entry['meets_claim'] = (None if base is None or entry is base
                                    else meets_claim(task, entry, base))
        by_slug = {e['slug']: e for e in entries}
        for entry in entries:
            anchor = by_slug.get(ANCHORS.get(entry['slug']))
            entry['anchor'] = anchor['slug'] if anchor else None
            entry['anchor_delta'] = entry['miou_mean'] - anchor['miou_mean'] if anchor else None
            entry['anchor_reading'] = anchor_reading(entry, anchor) if anchor else None
    return tasks


def anchor_reading(entry: dict, anchor: dict) -> str:
    """'better' or 'worse' when every seed of ``entry`` is beyond every seed of ``anchor``
    (mIoU), else 'within spread': :func:`nlseg.analysis.seed_table.compare`, the reading of the
    real-data tables."""
    return compare(dict(min=entry['miou_min'], max=entry['miou_max']),
                   dict(min=anchor['miou_min'], max=anchor['miou_max']))


ANCHOR_RULE = ('vs anchor = the head\'s seed mean minus that of its anchor row (mmseg\'s own '
               'head, or the authors\' form); better / worse only when every seed is beyond '
               'every seed of the anchor.')


def _f(value: Optional[float], fmt: str = '.2f') -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return format(value, fmt)


def format_table(entries: Sequence[dict], task: str) -> str:
    """The markdown table of one task's aggregates (see :func:`aggregate`)."""
    if task not in TASKS:
        raise ValueError(f'task must be one of {sorted(TASKS)}, got {task!r}')
    classes: list[str] = []
    for e in entries:
        classes += [c for c in e['iou'] if c not in classes]
    extra = [k for k in EXTRA_COLUMNS if any(k in e for e in entries)]
    anchors = any(e.get('anchor') for e in entries)
    header = ['config', 'n', 'mIoU mean', 'min-max', 'std', 'per seed', 'delta vs baseline',
              'meets claim', *(['vs anchor'] if anchors else []),
              *[f'IoU {c}' for c in classes],
              *[EXTRA_COLUMNS[k] for k in extra],
              'params (M)', 's/iter', 'train s']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for e in entries:
        claim = ('baseline' if e['is_baseline'] else '-' if e['meets_claim'] is None
                 else 'yes' if e['meets_claim'] else 'no')
        delta = '-' if e['delta'] is None or e['is_baseline'] else f"{e['delta']:+.2f}"
        cells = [e['slug'], str(e['n']), _f(e['miou_mean']),
                 f"{e['miou_min']:.2f}-{e['miou_max']:.2f}", _f(e['miou_std']),
                 ' / '.join(f'{v:.1f}' for v in e['miou']), delta, claim,
                 *([f"{e['anchor']} {e['anchor_delta']:+.2f} ({e['anchor_reading']})"
                    if e.get('anchor') else '-'] if anchors else []),
                 *[_f(e['iou'].get(c)) for c in classes],
                 *[_f(e.get(k), '.3f') for k in extra],
                 _f(e['params_m']), _f(e['sec_per_iter'], '.3f'), _f(e['train_seconds'], '.0f')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_tables(tasks: dict[str, list[dict]]) -> str:
    """Every task's title and table."""
    return '\n\n'.join(f"{TASKS[t].title}:\n\n{format_table(tasks[t], t)}" for t in tasks)


def format_elapsed(seconds: float) -> str:
    """``2m10s`` (``45s`` under a minute)."""
    seconds = int(round(seconds))
    return f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'


def progress_line(done: int, total: int, row: dict, elapsed: float) -> str:
    """``[demo 7/33] nl seed 1: mIoU 91.2 (34 s) | elapsed 2m10s``."""
    return (f"[demo {done}/{total}] {row['slug']} seed {row['seed']}: mIoU "
            f"{row['metrics']['mIoU']:.1f} ({row['train_seconds']:.0f} s) | elapsed "
            f'{format_elapsed(elapsed)}')


def bar_chart(tasks: dict[str, list[dict]], path: str) -> str:
    """``miou.png``: one panel per task (bars = seed mean, error bars = min-max, dots = the
    seeds, dashed = the baseline mean, dotted = baseline + CONTEXT_MARGIN for the key task),
    and for the regions task a panel of isolated regions per image."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(t, 'miou') for t in tasks]
    if 'regions' in tasks and any('isolated_regions' in e for e in tasks['regions']):
        panels.append(('regions', 'isolated'))
    widths = [max(2.5, 0.7 * len(tasks[t]) + 1.0) for t, _ in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths), 3.8), squeeze=False,
                             gridspec_kw=dict(width_ratios=widths))
    for ax, (task, kind) in zip(axes[0], panels):
        entries = tasks[task]
        xs = range(len(entries))
        names = [e['slug'] for e in entries]
        anchor_slugs = set(ANCHORS.values())
        colours = ['#999999' if e['is_baseline'] else '#66aa66' if e['slug'] in anchor_slugs
                   else '#3366aa' for e in entries]
        base = next((e for e in entries if e['is_baseline']), None)
        if kind == 'miou':
            means = [e['miou_mean'] for e in entries]
            err = [[m - e['miou_min'] for m, e in zip(means, entries)],
                   [e['miou_max'] - m for m, e in zip(means, entries)]]
            ax.bar(xs, means, color=colours, yerr=err, capsize=3, ecolor='k')
            for i, e in enumerate(entries):
                offsets = [0.18 * (j - (e['n'] - 1) / 2) for j in range(e['n'])]
                ax.scatter([i + o for o in offsets], e['miou'], s=10, color='#dd6622',
                           zorder=3, label='seeds' if i == 0 else None)
                ax.text(i, e['miou_max'] + 1.0, f"{e['miou_mean']:.1f}", ha='center',
                        fontsize=7)
            if base is not None:
                ax.axhline(base['miou_mean'], color='k', ls='--', lw=0.8,
                           label=f"{base['slug']} mean")
                if task == 'context':
                    ax.axhline(base['miou_mean'] + CONTEXT_MARGIN, color='k', ls=':',
                               lw=0.8, label=f'+{CONTEXT_MARGIN:g}')
            ax.set_ylabel('val mIoU (%), seed mean, min-max')
            ax.set_ylim(0, 105)
            ax.set_title(TASKS[task].title, fontsize=9)
        else:
            values = [e.get('isolated_regions', float('nan')) for e in entries]
            ax.bar(xs, values, color=colours)
            for i, e in enumerate(entries):
                label = f"{values[i]:.2f}" + (f"\nRE {e['RE']:.2f}" if 'RE' in e else '')
                ax.text(i, values[i], label, ha='center', va='bottom', fontsize=7)
            if base is not None and 'isolated_regions' in base:
                ax.axhline(base['isolated_regions'], color='k', ls='--', lw=0.8,
                           label=f"{base['slug']} mean")
            ax.set_ylabel('isolated regions / image (seed mean)')
            ax.set_ylim(0, 1.25 * max([v for v in values if v == v] + [1e-3]))
            ax.set_title('Regions: isolated regions', fontsize=9)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, rotation=30, ha='right', fontsize=8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc='best', fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_summary(args, rows: list[dict], failures: list[str], wall: float,
                  argv: Sequence[str]) -> dict:
    """summary.md, summary.json and miou.png in the work dir; returns the aggregates."""
    order = [config_name(c) for c in args.configs]
    tasks = aggregate(rows, order)
    chart = bar_chart(tasks, osp.join(args.work_dir, 'miou.png')) if tasks else None
    cores = os.cpu_count()
    threads = max(1, (cores or 1) // args.jobs)
    schedule = (f'{args.schedule_iters} iterations' if args.schedule_iters
                else "each config's own schedule")
    vis_s = sum(r.get('vis_seconds', 0.0) for r in rows)
    lines = [f'# nlseg demo{" (quick)" if args.quick else ""}', '',
             f'- command: `{shlex.join(["python", "tools/run_demo.py", *argv])}`',
             f'- machine: {cores} cores; {args.jobs} runs at a time, OMP_NUM_THREADS = '
             f'MKL_NUM_THREADS = {threads} each',
             f'- runs: {len(rows)} finished, {len(failures)} failed; seeds '
             f'{" ".join(map(str, args.seeds))}; {schedule}; metrics of the final '
             'validation of each run (tools/train.py, vis_data/scalars.json)'
             + ('; tools/test.py on every final checkpoint' if args.test else ''),
             f'- wall time: {format_elapsed(wall)} ({wall:.0f} s)'
             + (f'; pictures (seed {args.seeds[0]}, tools/analysis/visualize.py, in the '
               f'driver process) {vis_s:.0f} s in all' if not args.no_vis else ''),
             '- spread: min-max over the seeds and the sample standard deviation (n - 1); '
             'per seed: the mIoU of each seed in seed order', '']
    for task, entries in tasks.items():
        lines += [f"## {TASKS[task].title}", '', TASKS[task].claim_rule + '.', '',
                  *([ANCHOR_RULE, ''] if any(e.get('anchor') for e in entries) else []),
                  format_table(entries, task), '']
    if failures:
        lines += ['## Failed runs', '', *[f'- {f}' for f in failures], '']
    if chart:
        lines += ['![mIoU per head](miou.png)', '']
    pictures = [(r['name'], p) for r in sorted(rows, key=lambda r: (r['task'], r['name']))
                for p in r['pictures']]
    if pictures:
        lines += [f'## Pictures (seed {args.seeds[0]})', '',
                  *[f'![{n}]({p})' for n, p in pictures], '']
    with open(osp.join(args.work_dir, 'summary.md'), 'w') as f:
        f.write('\n'.join(lines))
    meta = dict(command=['python', 'tools/run_demo.py', *argv], cores=cores, jobs=args.jobs,
                threads_per_job=threads, seeds=list(args.seeds), iters=args.schedule_iters,
                quick=args.quick, wall_seconds=round(wall, 1), vis_seconds=round(vis_s, 1),
                failures=failures)
    runs = sorted(rows, key=lambda r: (r['task'], r['name'], r['seed']))
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(dict(meta=meta, runs=runs, aggregates=tasks), f, indent=2)
    return tasks
