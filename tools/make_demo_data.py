"""Write the synthetic long-range-context data set (nlseg's embedded demo).

Run with no arguments it writes ``data/synthetic_context`` (where the demo configs look):
400 train and 100 val images of 96 x 96, seed 0. Same seed, same bytes.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from nlseg.datasets.synthetic_context_generator import generate_synthetic_context  # noqa: E402

DEFAULT_OUT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data',
                       'synthetic_context')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=DEFAULT_OUT, help='output folder (replaced)')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, default=96, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = generate_synthetic_context(args.out, num_train=args.num_train,
                                     num_val=args.num_val, size=args.size, seed=args.seed)
    print(f'wrote {args.num_train} train and {args.num_val} val images of '
          f'{args.size}x{args.size} to {out}')


if __name__ == '__main__':
    main()
