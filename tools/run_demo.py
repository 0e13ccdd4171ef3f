"""`make demo`: the long-range-context benchmark on the embedded synthetic data set.

Makes the data if missing, then for every demo config trains with tools/train.py and tests
the final checkpoint with tools/test.py (each in its own process, exactly as a user would),
and prints a table of per-class IoU and mIoU, parameters and training seconds per
iteration. Written to ``<work-dir>``: ``summary.md``, ``summary.json``, a bar chart
``miou.png`` and, per head, the pictures of tools/analysis/visualize.py on one val image.

    python tools/run_demo.py                 # every config in configs/demo
    python tools/run_demo.py --quick         # 20 iterations on a tiny data set (for tests)
    python tools/run_demo.py --configs configs/demo/fcn_*.py
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tools'))

DEMO_CONFIGS = osp.join(ROOT, 'configs', 'demo')
DATA_ROOT = osp.join(ROOT, 'data', 'synthetic_context')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run the long-range-context demo.')
    parser.add_argument('--configs', nargs='+', help='demo configs (default: configs/demo/*.py)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'))
    parser.add_argument('--quick', action='store_true',
                        help='20 iterations on a 16/8-image data set: checks the pipeline, '
                        'not the accuracy')
    parser.add_argument('--no-vis', action='store_true', help='skip the per-head pictures')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='extra key=value overrides passed to every train and test run')
    parser.add_argument('--data-root', help='data set folder (default: data/synthetic_context, '
                        'or work-dir/data for --quick)')
    return parser.parse_args(argv)


def config_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def run(cmd: list[str], log_path: str) -> float:
    """Run ``cmd`` with its output in ``log_path``; return its wall time; raise on failure."""
    start = time.perf_counter()
    with open(log_path, 'w') as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if proc.returncode != 0:
        with open(log_path) as log:
            tail = ''.join(log.readlines()[-30:])
        raise RuntimeError(f'{" ".join(cmd)} failed (exit {proc.returncode}); log '
                           f'{log_path}:\n{tail}')
    return time.perf_counter() - start


def latest_json(work_dir: str, pattern: str) -> str:
    files = sorted(glob.glob(osp.join(work_dir, '*', pattern)), key=osp.getmtime)
    if not files:
        raise FileNotFoundError(f'no {pattern} under {work_dir}')
    return files[-1]


def seconds_per_iter(work_dir: str) -> float:
    """Median training time per iteration from the run's scalars (mmengine IterTimerHook)."""
    times = []
    with open(latest_json(work_dir, osp.join('vis_data', 'scalars.json'))) as f:
        for line in f:
            record = json.loads(line)
            if 'time' in record and 'loss' in record:
                times.append(record['time'])
    times = sorted(times[1:] or times)  # the first interval holds the warm-up
    return times[len(times) // 2] if times else float('nan')


def count_parameters(config: str) -> float:
    """Parameters of the whole model (millions), built from the config without weights."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    return sum(p.numel() for p in model.parameters()) / 1e6


def run_config(config: str, args, data_root: str) -> dict:
    name = config_name(config)
    work_dir = osp.join(args.work_dir, name)
    os.makedirs(work_dir, exist_ok=True)
    options = [f'train_dataloader.dataset.data_root={data_root}',
               f'val_dataloader.dataset.data_root={data_root}',
               f'test_dataloader.dataset.data_root={data_root}']
    options += args.cfg_options
    if args.quick:
        options += ['train_cfg.max_iters=20', 'train_cfg.val_interval=20',
                    'default_hooks.checkpoint.interval=20', 'default_hooks.logger.interval=5',
                    'param_scheduler.0.end=20']
    py = sys.executable
    train_s = run([py, 'tools/train.py', config, '--work-dir', work_dir,
                   '--cfg-options', *options], osp.join(work_dir, 'train.out'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    iters = int(osp.splitext(osp.basename(checkpoint))[0].split('_')[-1])  # iter_N.pth
    run([py, 'tools/test.py', config, checkpoint, '--work-dir', work_dir,
         '--cfg-options', *options], osp.join(work_dir, 'test.out'))
    # tools/test.py dumps the metrics to <work_dir>/<timestamp>/<timestamp>.json
    with open(latest_json(work_dir, '*.json')) as f:
        metrics = json.load(f)
    pictures = []
    if not args.no_vis:
        from analysis.visualize import visualize
        image = osp.join(data_root, 'img_dir', 'val', sorted(
            os.listdir(osp.join(data_root, 'img_dir', 'val')))[0])
        options = {'model.decode_head.nltv.test_iters': 100} if name.startswith('nltv') else None
        pictures = [osp.relpath(p, args.work_dir) for p in visualize(
            config, checkpoint, image, out_dir=osp.join(args.work_dir, 'vis'), name=name,
            cfg_options=options)]
    return dict(config=osp.relpath(config, ROOT), name=name, metrics=metrics,
                train_seconds=round(train_s, 1), sec_per_iter=seconds_per_iter(work_dir),
                params_m=count_parameters(config), iters=iters, pictures=pictures)


def bar_chart(rows: list[dict], path: str) -> str:
    """mIoU per config as a bar chart, the FCN baseline as a dashed line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [r['name'].split('_')[0] for r in rows]
    values = [r['metrics']['mIoU'] for r in rows]
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(rows), 3.6))
    colours = ['#999999' if n == 'fcn' else '#3366aa' for n in names]
    ax.bar(names, values, color=colours)
    if 'fcn' in names:
        ax.axhline(values[names.index('fcn')], color='k', ls='--', lw=0.8, label='FCN')
        ax.legend(loc='lower right')
    for i, v in enumerate(values):
        ax.text(i, v + 0.5, f'{v:.1f}', ha='center', fontsize=8)
    ax.set_ylabel('val mIoU (%)')
    ax.set_ylim(0, 100)
    ax.set_title('Long-range-context demo')
    plt.setp(ax.get_xticklabels(), rotation=30, ha='right')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_table(rows: list[dict]) -> str:
    classes = [k[len('IoU.'):] for k in rows[0]['metrics'] if k.startswith('IoU.')]
    header = ['config', 'mIoU', *[f'IoU {c}' for c in classes], 'params (M)', 's/iter',
              'train s']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        m = row['metrics']
        cells = [row['name'], f"{m['mIoU']:.2f}", *[f"{m[f'IoU.{c}']:.2f}" for c in classes],
                 f"{row['params_m']:.2f}", f"{row['sec_per_iter']:.3f}",
                 f"{row['train_seconds']:.0f}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    configs = args.configs or sorted(glob.glob(osp.join(DEMO_CONFIGS, '*.py')))
    # The FCN baseline first: every other row is read against it.
    configs.sort(key=lambda c: (not config_name(c).startswith('fcn'), config_name(c)))
    from nlseg.datasets.synthetic_context_generator import generate_synthetic_context
    if args.quick:
        data_root = args.data_root or osp.join(args.work_dir, 'data')
        generate_synthetic_context(data_root, num_train=16, num_val=8)
    else:
        data_root = args.data_root or DATA_ROOT
        if not osp.isdir(data_root):
            print(f'making the demo data in {data_root}', flush=True)
            generate_synthetic_context(data_root)
    rows = []
    for config in configs:
        print(f'[demo] training and testing {config_name(config)} ...', flush=True)
        row = run_config(config, args, osp.abspath(data_root))
        print(f"[demo] {row['name']}: mIoU {row['metrics']['mIoU']:.2f} "
              f"({row['train_seconds']:.0f} s of training)", flush=True)
        rows.append(row)
        # the table so far: the FCN baseline's row is there after the first config
        print('\n' + format_table(rows) + '\n', flush=True)
    table = format_table(rows)
    summary = (f'# Long-range-context demo{" (quick)" if args.quick else ""}\n\n'
               f'Data: {data_root}; each config trained and tested with tools/train.py and '
               f'tools/test.py.\n\n{table}\n')
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'summary.md'), 'w') as f:
        f.write(summary)
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    chart = bar_chart(rows, osp.join(args.work_dir, 'miou.png'))
    with open(osp.join(args.work_dir, 'summary.md'), 'a') as f:
        f.write('\n![mIoU per head](miou.png)\n\n')
        for row in rows:
            for picture in row['pictures']:
                f.write(f"![{row['name']}]({picture})\n")
    print(f"written to {osp.join(args.work_dir, 'summary.md')} (chart: {chart})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
