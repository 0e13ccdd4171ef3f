"""Real-data tables: every head on real images beside the heads a user would pick instead.

    # CamVid (converted with tools/dataset_converters/camvid.py): the CPU-scale table, seeds 0 1
    python tools/analysis/real_data_table.py camvid --data-root data/camvid
    # the same rows with the paper-scale configs (R-50-D8, 360 x 480, 20k iterations), on a GPU
    python tools/analysis/real_data_table.py camvid --scale paper --depth 50 --data-root data/camvid
    # WBC Dataset 2 (tools/dataset_converters/wbc.py): the NLTV paper's Table 1 at CPU scale
    python tools/analysis/real_data_table.py wbc --data-root data/wbc

Each run trains in its own process and is tested on the test split; the tool prints a progress
line per run and the table so far, and writes ``summary.md``, ``summary.json`` and
``miou.png`` in ``--work-dir``. Killed and rerun, it runs only the runs that have no result.
Library: :mod:`nlseg.analysis` (seed_table, table_report, camvid_table, wbc_table).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import platform
import shlex
import sys
import time

from nlseg.analysis.seed_table import run_table
from nlseg.analysis.table_report import write_report

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('table', choices=['camvid', 'wbc'])
    parser.add_argument('--data-root', help='the converted data set (default data/camvid or '
                        'data/wbc)')
    parser.add_argument('--work-dir', help='default work_dirs/real_data/<table>-<scale>')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--rows', nargs='+', help='a subset of the rows (default: all)')
    parser.add_argument('--scale', choices=['cpu', 'paper'], default='cpu',
                        help='camvid: cpu (the shared thin recipe) or paper (the method '
                        'configs, for a GPU machine)')
    parser.add_argument('--depth', type=int, choices=[50, 101], default=50,
                        help='backbone depth of --scale paper')
    parser.add_argument('--no-pretrained', action='store_true',
                        help='--scale paper from random weights (no download)')
    parser.add_argument('--iters', type=int,
                        help='shorten every run to this many iterations (a pipeline check)')
    parser.add_argument('--test-images', type=int,
                        help='test on the first N test images only (a pipeline check)')
    parser.add_argument('--jobs', type=int, default=1, help='runs at a time')
    parser.add_argument('--threads', type=int, help='torch threads per run '
                        '(default cores // jobs)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    default_root = osp.join(ROOT, 'data', args.table)
    data_root = osp.abspath(args.data_root or default_root)
    if not osp.isdir(data_root):
        raise SystemExit(f'--data-root {data_root} is not a folder: convert the data set first '
                         '(docs/datasets.md)')
    scale = args.scale if args.table == 'camvid' else 'cpu'
    work_dir = osp.abspath(args.work_dir or osp.join(
        ROOT, 'work_dirs', 'real_data', f'{args.table}-{scale}'
        + (f'-r{args.depth}' if scale == 'paper' else '')))
    if args.table == 'camvid':
        from nlseg.analysis import camvid_table
        module = camvid_table
        if scale == 'paper':
            runs = module.paper_runs(ROOT, data_root, args.seeds, args.depth, args.rows,
                                           args.iters, not args.no_pretrained,
                                           args.test_images)
        else:
            runs = module.cpu_runs(ROOT, data_root, args.seeds, args.rows, args.iters,
                                         args.test_images)
    else:
        from nlseg.analysis import wbc_table
        module = wbc_table
        if args.scale != 'cpu':
            raise SystemExit('wbc: only --scale cpu (the full-size recipe configs are '
                             'configs/nltv/*_wbc-300x300.py)')
        runs = module.runs(ROOT, data_root, args.seeds, args.rows, args.iters,
                              args.test_images)
    rows = [r for r in module.ROWS if r.name in {run.row for run in runs}]
    command = 'python ' + ' '.join(shlex.quote(a) for a in
                                   [osp.relpath(__file__, ROOT), *(argv or sys.argv[1:])])
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    started = time.time()

    def report(results):
        hours = sum(r['train_s'] + r.get('test_s', 0.0) for r in results) / 3600
        preamble = '\n'.join([
            module.PREAMBLE.format(scale=scale, depth=args.depth),
            '',
            f'Command: `{command}`  ',
            f'Machine: {platform.machine()}, {os.cpu_count()} cores, {threads} torch '
            f'thread(s) per run, {args.jobs} run(s) at a time; {len(results)} of {len(runs)} '
            f'runs, {hours:.2f} h of training and testing in all.'])
        text = write_report(results, rows, work_dir, module.TITLE.format(scale=scale),
                            preamble, module.CLASSES, module.BASELINE)
        print(text.split('\n\n', 2)[-1].split('\n\nPer-class')[0], flush=True)

    results = run_table(runs, work_dir, args.jobs, threads, report,
                        log=lambda s: print(s, flush=True))
    report(results)
    print(f'done in {time.time() - started:.0f} s: {osp.join(work_dir, "summary.md")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
