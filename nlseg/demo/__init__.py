"""The demo (`make demo`, ``tools/run_demo.py``; `make data`, ``tools/make_demo_data.py``):
every demo head over several seeds on the embedded synthetic tasks.

Library code run from the repository checkout (it runs the checkout's ``tools/train.py`` and
``tools/test.py`` and reads ``configs/demo``); the scripts of ``tools/`` are its command lines.

* :mod:`.tasks`: the registry of demo tasks (:data:`~.tasks.TASKS`: name, data generator and
  folder, config-name pattern, baseline, title, claim), the head lists
  (:data:`~.tasks.ANCHORS`, :data:`~.tasks.NOT_BENCHMARKED`, :data:`~.tasks.SLOW_FIRST`),
  :data:`~.tasks.DEFAULT_SEEDS` and :func:`~.tasks.make_task_data`;
* :mod:`.runner`: the schedule, the fork server, the runs and their scalars, the driver
  :func:`~.runner.main`;
* :mod:`.report`: aggregates over seeds, tables, chart and the summary files.
"""
from .tasks import (ANCHORS, DEFAULT_SEEDS, NOT_BENCHMARKED, SLOW_FIRST, TASKS, DemoTask,
                    config_task, make_task_data)

__all__ = ['ANCHORS', 'DEFAULT_SEEDS', 'NOT_BENCHMARKED', 'SLOW_FIRST', 'TASKS', 'DemoTask',
           'config_task', 'make_task_data']
