"""Write the model index: ``configs/<method>/metafile.yaml`` and ``model-index.yml``.

Usage::

    python tools/misc/generate_model_index.py [--check] [--root DIR]

One metafile per method folder (nl, arnl, ns, snl, gsnl, hamburger, nltv) in mmseg 1.x's
schema, listing every config of the folder, and the root ``model-index.yml`` importing them
(:mod:`nlseg.utils.model_index` says what goes in). ``Results`` come only from the "Our
results" tables of the folders' README.md (figures measured by this project). The files are
committed; rerun this after adding or renaming a config or filling an "Our results" row.
``--check`` writes nothing and exits 1 when a file is missing or differs.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

from nlseg.utils.model_index import stale_files, write_model_index

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if any file is missing or differs')
    parser.add_argument('--root', default=ROOT,
                        help='repository root holding configs/ (default: this checkout)')
    args = parser.parse_args(argv)
    stale = stale_files(args.root) if args.check else write_model_index(args.root)
    verb = 'stale' if args.check else 'written'
    print(f'{len(stale)} file(s) {verb}' + ''.join(f'\n  {r}' for r in stale))
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
