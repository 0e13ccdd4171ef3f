"""`make demo`: every demo head over several seeds, on the embedded synthetic tasks.

The command line of :func:`nlseg.demo.runner.main` (the library: ``nlseg/demo/``; the tasks,
their baselines and claims: ``nlseg/demo/tasks.py``). Runs = demo configs x seeds, each a
process running ``tools/train.py`` with a user's arguments, forked from a fork server that
imported the stack once, ``--jobs`` at a time; metrics of each run's final validation.

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
import sys

from nlseg.demo.runner import main

if __name__ == '__main__':
    sys.exit(main())
