"""`make demo`: every demo head over several seeds, on the embedded synthetic tasks.

Runs = demo configs x seeds. Each run is one process running ``tools/train.py`` as its
``__main__`` with the arguments a user would give it (``--cfg-options randomness.seed=S``),
forked from a fork server that imported torch, mmcv, mmseg and nlseg once (a fresh process
per run, without the seconds of imports each), ``--jobs`` of them at a time, each with
``OMP_NUM_THREADS = MKL_NUM_THREADS = max(1, cores // jobs)``. A run's metrics are those of
its final validation (at ``max_iters``), read from the run's ``vis_data/scalars.json``;
``--test`` also runs ``tools/test.py`` on each final checkpoint. The FCN baselines are
scheduled first; the results do not depend on the order in which runs finish.

Two tasks, told apart by the config name (the slug is the basename before the first '_'):

* ``context`` (``configs/demo/*_synthetic-context-*.py``, baseline ``fcn``): the claim is
  seed-mean mIoU >= the baseline's seed mean + 10 (``CONTEXT_MARGIN``);
* ``regions`` (``configs/demo/*_synthetic-regions-*.py``, baseline ``fcn-regions``): the
  claim is fewer isolated regions per image AND a lower RE score than the baseline (seed
  means) at a seed-mean mIoU >= the baseline's - 0.5 (``REGIONS_MIOU_TOLERANCE``).

Written to ``--work-dir`` (default ``work_dirs/demo``): ``summary.md`` (tables, chart, wall
time, command line, cores/threads), ``summary.json`` (every run's metrics and the
aggregates), ``miou.png`` (one panel per task: seed mean bars, min-max error bars, the seeds
as dots, the baseline dashed) and, for the first seed (0 by default) of each config, the
pictures of ``tools/analysis/visualize.py`` (``--no-vis`` skips them).

    python tools/run_demo.py                  # every config, seeds 0-4, the configs' schedule
    python tools/run_demo.py --full           # FULL_ITERS iterations (or --iters N)
    python tools/run_demo.py --quick          # 20 iterations on a tiny data set, seed 0
    python tools/run_demo.py --configs configs/demo/fcn_*.py --seeds 0 1 --jobs 2
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import shlex
import shutil
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

from make_demo_data import TASK_DATA, make_task_data  # noqa: E402

DEMO_CONFIGS = osp.join(ROOT, 'configs', 'demo')
#: seeds of a default run: 5 (the key task's runs sit on a knife's edge between reading the
#: key and not, so 3 seeds move the means by many points; 14 minutes on 2 cores)
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
#: iterations of the longer schedule (``--full``)
FULL_ITERS = 1200
#: iterations of ``--quick`` (a pipeline check, not an accuracy figure)
QUICK_ITERS = 20
#: images of the ``--quick`` data sets (train, val)
QUICK_DATA = (16, 8)
#: context task: a head meets the claim at seed-mean mIoU >= baseline mean + this
CONTEXT_MARGIN = 10.0
#: regions task: a head may lose at most this much seed-mean mIoU to the baseline
REGIONS_MIOU_TOLERANCE = 0.5
#: per task: the baseline slug and the title of its table and chart panel
TASKS = {
    'context': dict(baseline='fcn', title='Long-range context (key task)'),
    'regions': dict(baseline='fcn-regions', title='Regions'),
}
BASELINE_SLUGS = tuple(t['baseline'] for t in TASKS.values())
#: per nlseg head, the row it is read against: the implementation a user would otherwise
#: pick (mmseg 1.2.2's own NLHead and LightHamHead, at the same width, rank and steps) or,
#: for SNL / gSNL / NS, the authors' published forward (``<slug>-authors`` configs)
ANCHORS = {'nl': 'mmseg-nl', 'arnl': 'mmseg-nl', 'ham-nmf': 'mmseg-lightham',
           'ham-vq': 'mmseg-lightham', 'ham-cd': 'mmseg-lightham', 'snl': 'snl-authors',
           'gsnl': 'gsnl-authors', 'ns': 'ns-authors'}
#: demo configs left out of the default run (still run when named with --configs):
#: NLTV over the key-task FCN is kept for the reliability tests, but the key task is not
#: NLTV's claim (it links discs to discs, not to the key); the regions task shows it
NOT_BENCHMARKED = ('nltv-fcn',)
#: configs whose runs take several times the others' (NLTV's 1500 test steps and image
#: graphs: about 105 s against 28 s): scheduled right after the baselines
SLOW_FIRST = ('nltv-regions',)


def config_name(path: str) -> str:
    """The config's basename without ``.py``."""
    return osp.splitext(osp.basename(path))[0]


def config_slug(path: str) -> str:
    """The config's short name: its basename before the first '_' (``nl``, ``fcn``...)."""
    return config_name(path).split('_')[0]


def config_task(path: str) -> str:
    """The task of a demo config, from its name (``..._synthetic-<task>-...``)."""
    name = config_name(path)
    for task in TASKS:
        if f'_synthetic-{task}-' in name or name.endswith(f'_synthetic-{task}'):
            return task
    raise ValueError(f'config {path!r} belongs to no demo task: its name must contain '
                     f'one of {[f"_synthetic-{t}-" for t in TASKS]}')


def schedule_runs(configs: Sequence[str], seeds: Sequence[int]) -> list[tuple[str, int]]:
    """(config, seed) runs in launch order: the baselines' runs first, then those of the
    slow configs (:data:`SLOW_FIRST`: started early, they do not leave one job training
    alone at the end), then seed by seed every other config (so that each config has a row
    early)."""
    if not configs:
        raise ValueError('configs must not be empty')
    if not seeds:
        raise ValueError('seeds must not be empty')
    base = [c for c in configs if config_slug(c) in BASELINE_SLUGS]
    slow = [c for c in configs if config_slug(c) in SLOW_FIRST and c not in base]
    rest = [c for c in configs if c not in base and c not in slow]
    return ([(c, s) for c in base for s in seeds] + [(c, s) for c in slow for s in seeds]
            + [(c, s) for s in seeds for c in rest])


def iteration_options(iters: int, logger_interval: Optional[int] = None) -> list[str]:
    """``--cfg-options`` that set the schedule to ``iters`` iterations (validation and the
    final checkpoint at ``iters``, the poly decay ending there)."""
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f'iters must be an int >= 1, got {iters!r}')
    interval = logger_interval or max(1, min(50, iters // 10))
    return [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}', f'param_scheduler.0.end={iters}',
            f'default_hooks.logger.interval={interval}']


def thread_env(jobs: int, cores: Optional[int] = None) -> dict[str, str]:
    """The environment of a run: OMP/MKL threads = max(1, cores // jobs)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f'jobs must be an int >= 1, got {jobs!r}')
    threads = str(max(1, (cores or os.cpu_count() or 1) // jobs))
    return {**os.environ, 'OMP_NUM_THREADS': threads, 'MKL_NUM_THREADS': threads}


def read_scalars(path: str) -> tuple[dict[str, float], float]:
    """(metrics of the last validation, median seconds per training iteration) from an
    mmengine ``vis_data/scalars.json`` (one JSON record per line: training records hold
    ``loss``, validation records the metrics, e.g. ``mIoU``, both with ``step``)."""
    val, times = None, []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            if 'mIoU' in record:
                val = record
            elif 'loss' in record and 'time' in record:
                times.append(record['time'])
    if val is None:
        raise ValueError(f'{path} holds no validation record (no mIoU): did the run reach '
                         'its val_interval?')
    times = sorted(times[1:] or times)  # the first interval holds the warm-up
    metrics = {k: v for k, v in val.items() if k not in ('data_time', 'time')}
    return metrics, (times[len(times) // 2] if times else float('nan'))


def run_scalars(run_dir: str) -> str:
    """The newest ``<run_dir>/<timestamp>/vis_data/scalars.json`` (mmengine writes one
    timestamped folder per process)."""
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')),
                   key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {run_dir}')
    return files[-1]


#: modules the fork server imports once: every training run is forked from it, so no run
#: pays the seconds of importing torch, mmcv, mmseg and nlseg again
PRELOAD = ['torch', 'mmcv.ops', 'mmengine.runner', 'mmseg.models', 'mmseg.datasets',
           'mmseg.evaluation', 'nlseg']
_CONTEXT = None


def run_context():
    """The multiprocessing context of the runs: a fork server that has imported
    :data:`PRELOAD` (a fresh process per run, forked from a process that never computed)."""
    global _CONTEXT
    if _CONTEXT is None:
        import multiprocessing
        from multiprocessing import forkserver
        _CONTEXT = multiprocessing.get_context('forkserver')
        _CONTEXT.set_forkserver_preload(PRELOAD)
        forkserver.ensure_running()  # here, once, before runs start from several threads
    return _CONTEXT


def _tool_main(tool: str, argv: list[str], log_path: str, threads: int) -> None:
    """In a forked run process: ``tools/<tool>.py argv`` as its ``__main__``, exactly as
    ``python tools/<tool>.py argv`` would run it, its output in ``log_path``, torch limited to
    ``threads`` threads."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(ROOT)
    try:
        import runpy

        import torch
        torch.set_num_threads(threads)
        sys.argv = [osp.join('tools', f'{tool}.py'), *argv]
        runpy.run_path(osp.join(ROOT, 'tools', f'{tool}.py'), run_name='__main__')
    except SystemExit as exit_:  # tools exit through sys.exit / argparse
        if exit_.code not in (None, 0):
            raise
    except BaseException:
        import traceback
        traceback.print_exc()
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def run_tool(tool: str, argv: list[str], log_path: str, threads: int) -> float:
    """Run ``tools/<tool>.py argv`` in a process forked from the fork server, output to
    ``log_path``; return its wall time; RuntimeError with the log's tail on failure."""
    start = time.perf_counter()
    proc = run_context().Process(target=_tool_main, args=(tool, argv, log_path, threads))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        with open(log_path) as log:
            tail = ''.join(log.readlines()[-30:])
        raise RuntimeError(f'tools/{tool}.py {shlex.join(argv)} failed (exit '
                           f'{proc.exitcode}); log {log_path}:\n{tail}')
    return time.perf_counter() - start


def count_parameters(config: str) -> float:
    """Parameters of the whole model (millions), built from the config without weights."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with warnings.catch_warnings():  # mmseg's deprecation notes, already in the run logs
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    return sum(p.numel() for p in model.parameters()) / 1e6


def data_options(data_root: str) -> list[str]:
    return [f'{loader}.dataset.data_root={data_root}'
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def train_one(config: str, seed: int, args, data_root: str, env: dict[str, str]) -> dict:
    """One run: train (with ``--test`` also test) in forked processes under
    ``<work-dir>/<config>/seed<S>``; its row."""
    name = config_name(config)
    run_dir = osp.join(args.work_dir, name, f'seed{seed}')
    shutil.rmtree(run_dir, ignore_errors=True)  # a stale run must not be read as this one
    os.makedirs(run_dir)
    options = data_options(data_root) + args.schedule_options + list(args.cfg_options) + [
        f'randomness.seed={seed}']
    train_s = run_tool('train', [config, '--work-dir', run_dir, '--cfg-options', *options],
                       osp.join(run_dir, 'train.out'), int(env['OMP_NUM_THREADS']))
    metrics, sec_per_iter = read_scalars(run_scalars(run_dir))
    with open(osp.join(run_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    iters = int(osp.splitext(osp.basename(checkpoint))[0].split('_')[-1])  # iter_N.pth
    if metrics.get('step') != iters:
        raise RuntimeError(f'{name} seed {seed}: the last validation is at step '
                           f'{metrics.get("step")}, the final checkpoint at {iters}: set '
                           'val_interval = max_iters')
    row = dict(config=osp.relpath(config, ROOT), name=name, slug=config_slug(config),
               task=config_task(config), seed=seed, iters=iters, metrics=metrics,
               train_seconds=round(train_s, 1), sec_per_iter=sec_per_iter,
               checkpoint=osp.relpath(checkpoint, args.work_dir), pictures=[])
    if args.test:
        test_dir = osp.join(run_dir, 'test')
        os.makedirs(test_dir)
        row['test_seconds'] = round(run_tool(
            'test', [config, checkpoint, '--work-dir', test_dir,
                     '--cfg-options', *data_options(data_root), *args.cfg_options],
            osp.join(run_dir, 'test.out'), int(env['OMP_NUM_THREADS'])), 1)
        # tools/test.py dumps the metrics to <work_dir>/<timestamp>/<timestamp>.json
        dumps = sorted(glob.glob(osp.join(test_dir, '*', '*.json')), key=osp.getmtime)
        with open(dumps[-1]) as f:
            row['test_metrics'] = json.load(f)
    return row


def draw_pictures(row: dict, args, data_root: str, threads: int) -> list[str]:
    """tools/analysis/visualize.py's pictures of a finished run on the first val image,
    drawn in this process (no start-up per picture; torch limited to ``threads``);
    their paths relative to the work dir."""
    import torch
    from analysis.visualize import visualize

    torch.set_num_threads(threads)
    val_dir = osp.join(data_root, 'img_dir', 'val')
    image = osp.join(val_dir, sorted(os.listdir(val_dir))[0])
    options = ({'model.decode_head.nltv.test_iters': 100} if row['slug'].startswith('nltv')
               else None)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        paths = visualize(osp.join(ROOT, row['config']), osp.join(args.work_dir,
                          row['checkpoint']), image, out_dir=osp.join(args.work_dir, 'vis'),
                          name=row['name'], cfg_options=options)
    return [osp.relpath(p, args.work_dir) for p in paths]


# ---------------------------------------------------------------- aggregation and tables


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
        base = next((e for e in entries if e['slug'] == TASKS[task]['baseline']), None)
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
    (mIoU), else 'within spread'."""
    if entry['miou_min'] > anchor['miou_max']:
        return 'better'
    if entry['miou_max'] < anchor['miou_min']:
        return 'worse'
    return 'within spread'


def meets_claim(task: str, entry: dict, baseline: dict) -> Optional[bool]:
    """The task's claim for one head against its baseline (seed means): ``context``: mIoU
    >= baseline + CONTEXT_MARGIN; ``regions``: fewer isolated regions and lower RE at mIoU
    >= baseline - REGIONS_MIOU_TOLERANCE (None when either lacks those metrics)."""
    if task == 'context':
        return entry['miou_mean'] >= baseline['miou_mean'] + CONTEXT_MARGIN
    if task == 'regions':
        if any(k not in e for k in ('isolated_regions', 'RE') for e in (entry, baseline)):
            return None
        return (entry['isolated_regions'] < baseline['isolated_regions']
                and entry['RE'] < baseline['RE']
                and entry['miou_mean'] >= baseline['miou_mean'] - REGIONS_MIOU_TOLERANCE)
    raise ValueError(f'task must be one of {sorted(TASKS)}, got {task!r}')


CLAIM_RULES = {
    'context': f'meets claim = seed-mean mIoU >= baseline (`fcn`) seed mean + {CONTEXT_MARGIN:g}',
    'regions': ('meets claim = seed-mean isolated regions/image AND RE below the baseline\'s '
                f'(`fcn-regions`) at seed-mean mIoU >= baseline - {REGIONS_MIOU_TOLERANCE:g}'),
}


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
    return '\n\n'.join(f"{TASKS[t]['title']}:\n\n{format_table(tasks[t], t)}" for t in tasks)


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
            ax.set_title(TASKS[task]['title'], fontsize=9)
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


# ---------------------------------------------------------------- the driver


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the demo: every head over seeds.')
    parser.add_argument('--configs', nargs='+', help='demo configs (default: configs/demo/'
                        '*_synthetic-<task>-*.py of every task)')
    parser.add_argument('--seeds', nargs='+', type=int,
                        help='seeds (default: 0 1 2 3 4; 0 with --quick)')
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='runs at a time (default: the cores, %(default)s here)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    schedule = parser.add_mutually_exclusive_group()
    schedule.add_argument('--full', action='store_true',
                          help=f'the longer schedule: {FULL_ITERS} iterations')
    schedule.add_argument('--iters', type=int, help='train N iterations (validation, final '
                          'checkpoint and the end of the poly decay at N)')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_ITERS} iterations on {QUICK_DATA[0]}/{QUICK_DATA[1]}'
                        '-image data sets, seed 0: checks the pipeline, not the accuracy')
    parser.add_argument('--test', action='store_true',
                        help='also run tools/test.py on each final checkpoint')
    parser.add_argument('--no-vis', action='store_true', help='skip the per-head pictures')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value overrides passed to every run')
    parser.add_argument('--data-root', nargs='+', default=[], metavar='TASK=DIR',
                        help='data folder per task (default: data/synthetic_<task>, or '
                        '<work-dir>/data/<task> with --quick)')
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f'--jobs must be >= 1, got {args.jobs}')
    if args.iters is not None and args.iters < 1:
        parser.error(f'--iters must be >= 1, got {args.iters}')
    if args.quick and args.full:
        parser.error('--quick and --full exclude each other')
    roots = {}
    for item in args.data_root:
        task, sep, path = item.partition('=')
        if not sep or task not in TASKS or not path:
            parser.error(f'--data-root takes TASK=DIR with TASK in {sorted(TASKS)}, got '
                         f'{item!r}')
        roots[task] = osp.abspath(path)
    args.data_root = roots
    if args.seeds is None:
        args.seeds = [0] if args.quick else list(DEFAULT_SEEDS)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds must be distinct, got {args.seeds}')
    iters = (args.iters if args.iters is not None else FULL_ITERS if args.full
             else QUICK_ITERS if args.quick else None)
    args.schedule_iters = iters
    args.schedule_options = [] if iters is None else iteration_options(
        iters, 5 if args.quick and args.iters is None else None)
    args.work_dir = osp.abspath(args.work_dir)
    return args


def prepare_data(task: str, args) -> str:
    """The task's data folder, made when missing (always afresh, tiny, with --quick)."""
    if task in args.data_root:
        root = args.data_root[task]
        if not osp.isdir(root):
            raise FileNotFoundError(f'--data-root {task}={root}: no such folder')
        return root
    if args.quick:
        root = osp.join(args.work_dir, 'data', task)
        return make_task_data(task, root, *QUICK_DATA)
    root = TASK_DATA[task][2]
    if not osp.isdir(root):
        print(f'making the {task} demo data in {root}', flush=True)
        make_task_data(task, root)
    return root


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
        lines += [f"## {TASKS[task]['title']}", '', CLAIM_RULES[task] + '.', '',
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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    start = time.perf_counter()
    if args.configs:
        configs = [osp.abspath(c) for c in args.configs]
    else:
        configs = sorted(c for t in TASKS
                         for c in glob.glob(osp.join(DEMO_CONFIGS, f'*_synthetic-{t}-*.py'))
                         if config_slug(c) not in NOT_BENCHMARKED)
    if not configs:
        raise FileNotFoundError(f'no demo configs in {DEMO_CONFIGS}')
    for c in configs:
        config_task(c)  # every config belongs to a task, or stop before any run
    args.configs = configs
    os.makedirs(args.work_dir, exist_ok=True)
    data_roots = {t: osp.abspath(prepare_data(t, args))
                  for t in dict.fromkeys(config_task(c) for c in configs)}
    runs = schedule_runs(configs, args.seeds)
    jobs = min(args.jobs, len(runs))
    env = thread_env(args.jobs)
    # the fork server (and so every run forked from it) starts with these threads
    os.environ.update(OMP_NUM_THREADS=env['OMP_NUM_THREADS'],
                      MKL_NUM_THREADS=env['MKL_NUM_THREADS'])
    run_context()
    print(f'[demo] {len(runs)} runs ({len(configs)} configs x {len(args.seeds)} seeds), '
          f'{jobs} at a time, OMP_NUM_THREADS={env["OMP_NUM_THREADS"]} each', flush=True)
    params: dict[str, float] = {}
    rows: list[dict] = []
    failures: list[str] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(train_one, c, s, args, data_roots[config_task(c)], env): (c, s)
                   for c, s in runs}
        for future in as_completed(futures):
            config, seed = futures[future]
            try:
                row = future.result()
            except Exception as err:  # one failed run must not lose the others
                # summary.md names the run and the failing command; the log holds the rest
                failures.append(f'{config_slug(config)} seed {seed}: '
                                f'{str(err).splitlines()[0] if str(err) else repr(err)}')
                print(f'[demo {len(rows) + len(failures)}/{len(runs)}] {config_slug(config)} '
                      f'seed {seed}: FAILED\n{err}', flush=True)
                continue
            if config not in params:  # built here once per config, in this process
                params[config] = count_parameters(config)
            row['params_m'] = params[config]
            if not args.no_vis and seed == args.seeds[0]:
                # drawn here while the other jobs train: one process, no start-up per head
                vis_start = time.perf_counter()
                try:
                    row['pictures'] = draw_pictures(row, args, data_roots[row['task']],
                                                    int(env['OMP_NUM_THREADS']))
                except Exception as err:  # a picture must not lose the run's figures
                    print(f"[demo] pictures of {row['slug']} failed: {err}", flush=True)
                    row['vis_error'] = str(err)
                row['vis_seconds'] = round(time.perf_counter() - vis_start, 1)
            rows.append(row)
            print(progress_line(len(rows) + len(failures), len(runs), row,
                              time.perf_counter() - start), flush=True)
            print('\n' + format_tables(aggregate(rows, [config_name(c) for c in configs]))
                  + '\n', flush=True)
    wall = time.perf_counter() - start
    write_summary(args, rows, failures, wall, argv)
    print(f"[demo] {len(rows)}/{len(runs)} runs in {format_elapsed(wall)}; written to "
          f"{osp.join(args.work_dir, 'summary.md')}", flush=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
