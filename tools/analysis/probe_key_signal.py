"""Probe a trained key-task demo model: does the key reach the discs, and where is it lost?

    python tools/analysis/probe_key_signal.py CONFIG CHECKPOINT [--data-root DIR]

The command line over :mod:`nlseg.analysis.key_probe`
(which says what is measured and written).
"""
from __future__ import annotations

import argparse
import json

from nlseg.analysis.key_probe import probe


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', help='the key-task data (default: the config\'s)')
    args = parser.parse_args(argv)
    print(json.dumps(probe(args.config, args.checkpoint, args.data_root), indent=1))


if __name__ == '__main__':
    main()
