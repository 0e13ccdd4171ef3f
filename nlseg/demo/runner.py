"""The demo's runs: the schedule, the fork server, ``tools/train.py`` / ``tools/test.py`` run
in forked processes, their scalars, the pictures, and the driver :func:`main` (the command
line of ``tools/run_demo.py``).

Runs = demo configs x seeds. Each run is one process running the checkout's ``tools/train.py``
as its ``__main__`` with the arguments a user would give it (``--cfg-options
randomness.seed=S``), forked from a fork server that imported torch, mmcv, mmseg and nlseg once
(a fresh process per run, without the seconds of imports each), ``--jobs`` of them at a time,
each with ``OMP_NUM_THREADS = MKL_NUM_THREADS = max(1, cores // jobs)``. A run's metrics are
those of its final validation (at ``max_iters``), read from the run's
``vis_data/scalars.json``; ``--test`` also runs ``tools/test.py`` on each final checkpoint. The
baselines are scheduled first; the results do not depend on the order in which runs finish.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import shlex
import shutil
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Optional, Sequence

from .report import aggregate, format_elapsed, format_tables, progress_line, write_summary
from .tasks import (BASELINE_SLUGS, DEFAULT_SEEDS, DEMO_CONFIGS, ROOT, SLOW_FIRST, TASKS,
                    config_name, config_slug, config_task, demo_configs, make_task_data)

#: iterations of the longer schedule (``--full``)
FULL_ITERS = 1200
#: iterations of ``--quick`` (a pipeline check, not an accuracy figure)
QUICK_ITERS = 20
#: images of the ``--quick`` data sets (train, val)
QUICK_DATA = (16, 8)


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
    """The pictures of :func:`nlseg.analysis.visualization.visualize` (the code of
    tools/analysis/visualize.py) of a finished run on the first val image,
    drawn in this process (no start-up per picture; torch limited to ``threads``);
    their paths relative to the work dir."""
    import torch

    from nlseg.analysis.visualization import visualize
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
    root = TASKS[task].data_dir()
    if not osp.isdir(root):
        print(f'making the {task} demo data in {root}', flush=True)
        make_task_data(task, root)
    return root


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    start = time.perf_counter()
    if args.configs:
        configs = [osp.abspath(c) for c in args.configs]
    else:
        configs = demo_configs()
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
