"""Params and FLOPs of every method config at its crop size, in the READMEs' config tables.

Usage::

    python tools/analysis/config_resources.py [--folders nl snl ...] [--only STR ...]
                                              [--recompute] [--check] [--root DIR]

Counts every config of ``configs/{nl,arnl,ns,snl,gsnl,hamburger,nltv}/`` that has no
figures for its current model and crop in ``configs/<method>/resources.json`` (all of them
with ``--recompute``; ``--only``: the configs whose name contains one of the strings), saving
after each config (an interrupted run resumes where it stopped), then rewrites the
"## Configs" table of each ``configs/<method>/README.md`` with Crop, Params and FLOPs columns
(:mod:`nlseg.utils.config_resources` says what is counted). ``--check`` counts nothing,
writes nothing, and exits 1 when a config has no current figures or a README table differs
from what the figures give (it only loads the configs: about a second per config on an idle
machine). ``--tables-only`` rewrites the tables from the figures at hand.

One R-50-D8 config at 512 x 512 takes about 15 s on one CPU thread, an R-101-D8 one about
25 s; the whole set (95 configs) about 25 minutes on the project's 2-core machine.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time

from nlseg.utils.config_resources import (method_collections, stale, update_resources,
                                          write_readmes)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--folders', nargs='+', help='method folders (default: all)')
    parser.add_argument('--only', nargs='+', help='count only configs whose name contains '
                        'one of these strings')
    parser.add_argument('--recompute', action='store_true',
                        help='count again even configs whose figures are current')
    parser.add_argument('--tables-only', action='store_true',
                        help='count nothing; rewrite the README tables from the figures at '
                        'hand (configs without figures get "-")')
    parser.add_argument('--check', action='store_true',
                        help='count and write nothing; exit 1 if anything is stale')
    parser.add_argument('--root', default=ROOT,
                        help='repository root holding configs/ (default: this checkout)')
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.root, args.folders)
        print(f'{len(problems)} stale' + ''.join(f'\n  {p}' for p in problems))
        return 1 if problems else 0
    start = time.perf_counter()
    counted = 0
    for collection in [] if args.tables_only else method_collections(args.folders):
        counted += len(update_resources(args.root, collection.folder, args.recompute,
                                        args.only))
    written = write_readmes(args.root, args.folders)
    print(f'{counted} config(s) counted in {time.perf_counter() - start:.0f} s; '
          f'{len(written)} README(s) written' + ''.join(f'\n  {w}' for w in written))
    return 0


if __name__ == '__main__':
    sys.exit(main())
