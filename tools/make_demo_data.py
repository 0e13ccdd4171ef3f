"""Write the demo data sets (nlseg's embedded synthetic benchmarks).

Two tasks, each with its own generator and folder (where the demo configs look; the registry:
``nlseg/demo/tasks.py``):

* ``context``: ``data/synthetic_context_64x64``, discs whose class is named by a colour key on the
  far side of the image (``nlseg.datasets.synthetic_context_generator``);
* ``regions``: ``data/synthetic_regions`` (``nlseg.datasets.synthetic_regions_generator``).

    python tools/make_demo_data.py                  # both (a task whose generator is not
                                                    # installed yet is skipped, with a note)
    python tools/make_demo_data.py --task context --num-train 16 --num-val 8 --out DIR

The image side defaults to the ``data_preprocessor.size`` of the task's demo configs
(``configs/demo/*_synthetic-<task>-*.py``), else to the generator's own default. Same seed,
same bytes.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

from nlseg.demo.tasks import TASKS, make_task_data

#: the folder holding this script's tools/ (the checkout, or nlseg/.mim in a wheel): its
#: configs/demo and the default data/ folders
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--task', choices=[*TASKS, 'all'], default='all')
    parser.add_argument('--out', help='output folder, replaced (one task only; default: '
                        'data/synthetic_<task>)')
    parser.add_argument('--num-train', type=int, help='default: the generator\'s')
    parser.add_argument('--num-val', type=int, help='default: the generator\'s')
    parser.add_argument('--size', type=int, help='image side in pixels (default: the task '
                        'configs\' data_preprocessor size, else the generator\'s)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out and args.task == 'all':
        parser.error('--out needs a single --task (context or regions)')
    for name in ('num_train', 'num_val', 'size'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    tasks = list(TASKS) if args.task == 'all' else [args.task]
    for task in tasks:
        try:
            out = make_task_data(task, args.out, args.num_train, args.num_val, args.size,
                                 args.seed, root=ROOT)
        except ImportError as err:
            if args.task == 'all':
                print(f'{task}: skipped ({err})')
                continue
            raise
        print(f'{task}: wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
