"""A table of training runs over seeds: one process per run, resumable, aggregated over seeds.

A :class:`Run` is one row of a table trained with one seed: a config file, the options merged
into it (``Config.merge_from_dict``, as ``--cfg-options`` would), and the rows whose
same-seed checkpoint it starts from (a fine-tuning stage). :func:`run_table` trains and tests
every run that has no result yet, each in a fresh process (``python -m
nlseg.analysis.seed_table RUN.json``: mmengine's Runner, as ``tools/train.py`` builds it,
then its test loop on the final weights), prints a progress line per run and the table so far,
and leaves in ``<work_dir>/<row>/seed<S>/``:

* ``result.json``: the run's test metrics, parameters, s/iter, test time and peak memory;
  its presence marks the run done, so rerunning the table after a kill runs only the runs
  without one (a run killed in training resumes from its last checkpoint);
* ``run.json`` (what was asked), ``run.log`` (the run's output) and mmengine's work dir.

:func:`aggregate` reduces the results of each row over its seeds (mean, min, max, sample
standard deviation) and :func:`compare` reads a row against another "beyond the seed
spread": better when its worst seed beats the other's best, worse when its best seed falls
below the other's worst, within the spread otherwise.
"""
from __future__ import annotations

import copy
import dataclasses
import glob
import json
import math
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from typing import Any, Optional, Sequence

#: in a run's options, ``CHECKPOINT_OF + row`` stands for that row's same-seed checkpoint
CHECKPOINT_OF = 'checkpoint-of:'
#: the metrics a table reports per row, in order: (result key, column title, higher better)
SUMMARY_METRICS = (('mIoU', 'mIoU', True), ('aAcc', 'aAcc', True),
                   ('isolated_regions', 'isolated / image', False), ('re/RE', 'RE', False))


@dataclasses.dataclass(frozen=True)
class Run:
    """One row of a table trained with one seed.

    Args:
        row: the row's name (a folder name: letters, digits, ``-``, ``_``, ``.``).
        seed: the training seed (``randomness.seed``).
        config: the config file.
        options: merged into the config as ``--cfg-options`` would be; a string value
            ``'checkpoint-of:ROW'`` anywhere in it becomes the path of row ROW's final
            checkpoint of the same seed (which then runs first).
        test: test the final weights (the config's ``test_dataloader`` / ``test_evaluator``).
    """
    row: str
    seed: int
    config: str
    options: dict = dataclasses.field(default_factory=dict)
    test: bool = True

    def __post_init__(self) -> None:
        if not self.row or not all(c.isalnum() or c in '-_.' for c in self.row):
            raise ValueError(f'row must be a non-empty name of letters, digits, -, _ and ., '
                             f'got {self.row!r}')
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f'seed must be an int >= 0, got {self.seed!r}')

    @property
    def name(self) -> str:
        return f'{self.row}/seed{self.seed}'

    def needs(self) -> list[str]:
        """The rows whose same-seed checkpoint this run starts from."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for v in value.values():
                    walk(v)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    walk(v)
            elif isinstance(value, str) and value.startswith(CHECKPOINT_OF):
                found.append(value[len(CHECKPOINT_OF):])
        walk(self.options)
        return found


def run_dir(work_dir: str, run: Run) -> str:
    return osp.join(work_dir, run.row, f'seed{run.seed}')


def read_result(work_dir: str, run: Run) -> Optional[dict]:
    """The run's ``result.json``, or None when the run has not finished."""
    path = osp.join(run_dir(work_dir, run), 'result.json')
    if not osp.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _resolve(value: Any, work_dir: str, seed: int) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, work_dir, seed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve(v, work_dir, seed) for v in value)
    if isinstance(value, str) and value.startswith(CHECKPOINT_OF):
        row = value[len(CHECKPOINT_OF):]
        result = read_result(work_dir, Run(row, seed, ''))
        if result is None:
            raise RuntimeError(f'the checkpoint of row {row!r} seed {seed} is needed, but that '
                               'run has no result yet')
        return result['checkpoint']
    return value


def schedule_options(iters: int) -> dict:
    """Options that shorten a config's schedule to ``iters`` iterations (poly decay ending
    there, checkpoint at the end, no validation)."""
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f'iters must be an int >= 1, got {iters!r}')
    return {'train_cfg.max_iters': iters, 'param_scheduler.0.end': iters,
            'default_hooks.checkpoint.interval': iters,
            'default_hooks.logger.interval': max(1, min(50, iters // 10))}


def check_rows(rows: Optional[Sequence[str]], names: Sequence[str]) -> list[str]:
    """``rows`` (None: all of ``names``) as a list, refused unless a non-empty subset."""
    rows = list(names if rows is None else rows)
    unknown = [r for r in rows if r not in names]
    if unknown or not rows:
        raise ValueError(f'rows must be a non-empty list of {list(names)}, got {rows!r}')
    return rows


def check_runs(runs: Sequence[Run]) -> None:
    """Refuse duplicate runs and runs that need a row the table does not train."""
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f'runs must be distinct, got duplicates in {names}')
    keys = {(r.row, r.seed) for r in runs}
    for r in runs:
        for row in r.needs():
            if (row, r.seed) not in keys:
                raise ValueError(f'run {r.name} starts from row {row!r}, seed {r.seed}, which '
                                 'is not among the runs')


# ---------------------------------------------------------------------------------------------
# one run, in its own process
# ---------------------------------------------------------------------------------------------
def execute(spec_path: str) -> dict:
    """Train and test the run described by ``spec_path`` (a ``run.json`` written by
    :func:`run_table`) in this process; write and return its ``result.json``."""
    with open(spec_path) as f:
        spec = json.load(f)
    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    import nlseg  # noqa: F401  (registers nlseg's modules)

    if spec.get('threads'):
        torch.set_num_threads(int(spec['threads']))
    cfg = Config.fromfile(spec['config'])
    cfg.merge_from_dict(copy.deepcopy(spec['options']))
    cfg.work_dir = spec['work_dir']
    cfg.randomness = dict(seed=spec['seed'])
    cfg.resume = osp.exists(osp.join(spec['work_dir'], 'last_checkpoint'))
    runner = Runner.from_cfg(cfg)
    params = sum(p.numel() for p in runner.model.parameters())
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    peak_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(osp.join(spec['work_dir'], 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    result = dict(row=spec['row'], seed=spec['seed'], config=spec['config'],
                  iters=runner.iter, params=params, checkpoint=checkpoint,
                  train_s=train_s, peak_rss_mb=peak_train,
                  s_per_iter=median_iteration_time(spec['work_dir']))
    if spec['test']:
        start = time.perf_counter()
        metrics = runner.test()
        result['test_s'] = time.perf_counter() - start
        result['metrics'] = {k: float(v) for k, v in metrics.items()}
    path = osp.join(spec['work_dir'], 'result.json')
    with open(path + '.tmp', 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(path + '.tmp', path)  # atomic: a kill never leaves half a result
    return result


def median_iteration_time(work_dir: str) -> float:
    """The median of the training iterations' times (data loading included) that mmengine
    logged in the newest ``<work_dir>/<timestamp>/vis_data/scalars.json``, the first logged
    interval (the warm-up) left out when there are others; NaN when none was logged."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                   key=osp.getmtime)
    times = []
    if files:
        with open(files[-1]) as f:
            for line in f:
                record = json.loads(line) if line.strip() else {}
                if 'loss' in record and 'time' in record:
                    times.append(float(record['time']))
    times = sorted(times[1:] or times)
    return times[len(times) // 2] if times else float('nan')


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------
def run_table(runs: Sequence[Run], work_dir: str, jobs: int = 1,
              threads: Optional[int] = None, report=None, log=print) -> list[dict]:
    """Train and test every run of ``runs`` without a result under ``work_dir``, ``jobs``
    at a time, each with ``threads`` torch threads (default: cores // jobs); a run starts
    once the runs it needs have finished. After each run: a progress line and
    ``report(results)`` (the table so far). Returns the results of every run that has one.
    Raises RuntimeError at the end if a run failed (the others still ran)."""
    check_runs(runs)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f'jobs must be an int >= 1, got {jobs!r}')
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    done = {r.name for r in runs if read_result(work_dir, r) is not None}
    todo = [r for r in runs if r.name not in done]
    log(f'{len(runs)} runs: {len(done)} done before, {len(todo)} to run '
        f'({jobs} at a time, {threads} thread(s) each); work dir {work_dir}')
    failed: list[str] = []
    active: dict[str, tuple[subprocess.Popen, float, Any, Run]] = {}
    finished = len(done)
    while todo or active:
        blocked = {r.name for r in todo
                   if any(f'{row}/seed{r.seed}' not in done for row in r.needs())}
        dead = [r for r in todo if r.name in blocked
                and any(f'{row}/seed{r.seed}' in failed for row in r.needs())]
        for r in dead:
            todo.remove(r)
            failed.append(r.name)
            log(f'skipped {r.name}: a run it starts from failed')
        ready = [r for r in todo if r.name not in blocked]
        while ready and len(active) < jobs:
            r = ready.pop(0)
            todo.remove(r)
            if read_result(work_dir, r) is not None:  # another process of the table ran it
                done.add(r.name)
                finished += 1
                log(f'[{finished}/{len(runs)}] {r.name}: done by another process')
                continue
            active[r.name] = (*_launch(r, work_dir, threads), r)
        if not active:
            if todo:
                raise RuntimeError(f'runs {[r.name for r in todo]} wait for runs that never run')
            break
        time.sleep(0.5)
        for name, (proc, start, logf, r) in list(active.items()):
            if proc.poll() is None:
                continue
            logf.close()
            del active[name]
            finished += 1
            result = read_result(work_dir, r)
            wall = time.perf_counter() - start
            if proc.returncode != 0 or result is None:
                failed.append(name)
                log(f'[{finished}/{len(runs)}] {name} FAILED (exit {proc.returncode}, '
                    f'{wall:.0f} s): see {osp.join(run_dir(work_dir, r), "run.log")}')
                continue
            done.add(name)
            log(f'[{finished}/{len(runs)}] {name} in {wall:.0f} s: ' + progress_line(result))
            if report is not None:
                report([x for x in (read_result(work_dir, q) for q in runs) if x])
    if failed:
        raise RuntimeError(f'{len(failed)} run(s) failed: {failed}; rerun to retry them')
    return [x for x in (read_result(work_dir, q) for q in runs) if x]


def _launch(run: Run, work_dir: str, threads: int):
    folder = run_dir(work_dir, run)
    os.makedirs(folder, exist_ok=True)
    spec = dict(row=run.row, seed=run.seed, config=osp.abspath(run.config),
                options=_resolve(run.options, work_dir, run.seed), test=run.test,
                work_dir=osp.abspath(folder), threads=threads)
    spec_path = osp.join(folder, 'run.json')
    with open(spec_path, 'w') as f:
        json.dump(spec, f, indent=1)
    env = {**os.environ, 'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
    logf = open(osp.join(folder, 'run.log'), 'a')
    proc = subprocess.Popen([sys.executable, '-m', 'nlseg.analysis.seed_table', spec_path],
                            stdout=logf, stderr=subprocess.STDOUT, env=env)
    return proc, time.perf_counter(), logf


def progress_line(result: dict) -> str:
    m = result.get('metrics', {})
    parts = [f'{title} {m[key]:.2f}' for key, title, _ in SUMMARY_METRICS if key in m]
    parts.append(f'{result["s_per_iter"]:.3f} s/iter')
    return ', '.join(parts)


# ---------------------------------------------------------------------------------------------
# aggregates and readings
# ---------------------------------------------------------------------------------------------
def spread(values: Sequence[float]) -> dict:
    """mean, min, max and sample standard deviation (0 for one value) of ``values``."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('values must not be empty')
    mean = sum(values) / len(values)
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
           if len(values) > 1 else 0.0)
    return dict(mean=mean, min=min(values), max=max(values), std=std, n=len(values),
                values=values)


def aggregate(results: Sequence[dict], rows: Sequence[str]) -> dict[str, dict]:
    """Per row (in ``rows`` order, rows without a result left out): the seeds, the
    :func:`spread` of every test metric, and the means of params, s/iter, test seconds and
    the peak memory."""
    table: dict[str, dict] = {}
    for row in rows:
        mine = sorted((r for r in results if r['row'] == row), key=lambda r: r['seed'])
        if not mine:
            continue
        keys = sorted(set.intersection(*(set(r.get('metrics', {})) for r in mine)))
        table[row] = dict(
            seeds=[r['seed'] for r in mine],
            metrics={k: spread([r['metrics'][k] for r in mine]) for k in keys},
            params=mine[0]['params'],
            s_per_iter=spread([r['s_per_iter'] for r in mine])['mean'],
            peak_rss_mb=max(r['peak_rss_mb'] for r in mine),
            test_s=spread([r.get('test_s', float('nan')) for r in mine])['mean'],
            iters=mine[0]['iters'])
    return table


def compare(a: dict, b: dict) -> str:
    """'better', 'worse' or 'within spread': seed values ``a`` against ``b`` (both
    :func:`spread` dicts of a higher-is-better metric), beyond the seed spread."""
    if a['min'] > b['max']:
        return 'better'
    if a['max'] < b['min']:
        return 'worse'
    return 'within spread'


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print('usage: python -m nlseg.analysis.seed_table RUN.json', file=sys.stderr)
        return 2
    execute(argv[0])
    return 0


if __name__ == '__main__':
    sys.exit(main())
