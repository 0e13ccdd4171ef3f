"""Write the demo data sets (nlseg's embedded synthetic benchmarks).

Two tasks, each with its own generator and folder (where the demo configs look):

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
import glob
import importlib
import os.path as osp
import sys
from typing import Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

DEMO_CONFIGS = osp.join(ROOT, 'configs', 'demo')

#: task name -> (generator module, generator function, default output folder)
TASK_DATA = {
    'context': ('nlseg.datasets.synthetic_context_generator', 'generate_synthetic_context',
                osp.join(ROOT, 'data', 'synthetic_context_64x64')),
    'regions': ('nlseg.datasets.synthetic_regions_generator', 'generate_synthetic_regions',
                osp.join(ROOT, 'data', 'synthetic_regions')),
}


def task_configs(task: str, config_dir: str = DEMO_CONFIGS) -> list[str]:
    """The demo configs of ``task`` (``*_synthetic-<task>-*.py``), sorted."""
    if task not in TASK_DATA:
        raise ValueError(f'task must be one of {sorted(TASK_DATA)}, got {task!r}')
    return sorted(glob.glob(osp.join(config_dir, f'*_synthetic-{task}-*.py')))


def config_image_size(config: str) -> Optional[int]:
    """The square image side of a demo config (its ``model.data_preprocessor.size``), or
    None when the config sets none or a non-square one."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    size = cfg.model.get('data_preprocessor', {}).get('size')
    if size is None:
        return None
    size = tuple(size)
    return int(size[0]) if len(size) == 2 and size[0] == size[1] else None


def task_image_size(task: str) -> Optional[int]:
    """The image side the task's demo configs expect (the first config's), or None."""
    configs = task_configs(task)
    return config_image_size(configs[0]) if configs else None


def generator(task: str):
    """The generator function of ``task``; ImportError (naming the module) if missing."""
    if task not in TASK_DATA:
        raise ValueError(f'task must be one of {sorted(TASK_DATA)}, got {task!r}')
    module, func, _ = TASK_DATA[task]
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as err:
        raise ImportError(f'the {task} data generator {module}.{func} is not available: '
                          f'{err}') from err


def make_task_data(task: str, out: Optional[str] = None, num_train: Optional[int] = None,
                   num_val: Optional[int] = None, size: Optional[int] = None,
                   seed: int = 0) -> str:
    """Write the data set of ``task`` to ``out`` (default: its ``data/`` folder); arguments
    left None take the generator's defaults (``size``: the task configs' image side first).
    Returns the folder."""
    make = generator(task)
    out = out or TASK_DATA[task][2]
    kwargs = dict(seed=seed)
    if num_train is not None:
        kwargs['num_train'] = num_train
    if num_val is not None:
        kwargs['num_val'] = num_val
    size = size if size is not None else task_image_size(task)
    if size is not None:
        kwargs['size'] = size
    return make(out, **kwargs)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', choices=[*TASK_DATA, 'all'], default='all')
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
    tasks = list(TASK_DATA) if args.task == 'all' else [args.task]
    for task in tasks:
        try:
            out = make_task_data(task, args.out, args.num_train, args.num_val, args.size,
                                 args.seed)
        except ImportError as err:
            if args.task == 'all':
                print(f'{task}: skipped ({err})')
                continue
            raise
        print(f'{task}: wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
