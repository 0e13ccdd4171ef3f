"""Pictures of what a global-context head sees, always beside the input and the prediction.

    python tools/analysis/visualize.py CONFIG [CHECKPOINT] [--img PATH | --demo-index N]
        [--queries y,x ...] --out-dir DIR [--cfg-options k=v ...]

The command line over :mod:`nlseg.analysis.visualization`
(which says what is measured and written).
"""
from __future__ import annotations

import argparse

from nlseg.analysis.visualization import visualize


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Pictures of what a context head sees.')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (omit: random initialisation)')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--img', help='image path (default: a demo val image)')
    source.add_argument('--demo-index', type=int, default=0,
                        help='index N of data/synthetic_context/img_dir/val/NNNN.png')
    parser.add_argument('--queries', nargs='+', default=None, metavar='Y,X',
                        help='query pixels (default: centre of the largest predicted '
                        'non-background region, and the image centre)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if args.queries is not None:
        try:
            args.queries = [tuple(int(v) for v in q.split(',')) for q in args.queries]
        except ValueError:
            parser.error(f'--queries takes y,x pairs of integers, got {args.queries}')
        if any(len(q) != 2 for q in args.queries):
            parser.error(f'--queries takes y,x pairs of integers, got {args.queries}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    paths = visualize(args.config, args.checkpoint, image=args.img, out_dir=args.out_dir,
                      queries=args.queries, demo_index=args.demo_index,
                      cfg_options=args.cfg_options)
    for path in paths:
        print(path)


if __name__ == '__main__':
    main()
