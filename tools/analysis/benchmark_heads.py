"""Head benchmark: parameters, MACs, peak memory and time of one training step and one
inference, for every nlseg head and mmseg's own heads as anchors, each in its own process.

    python tools/analysis/benchmark_heads.py                       # all cases, 1x512x128x128
    python tools/analysis/benchmark_heads.py --cases anchors nonlocal --size 64
    python tools/analysis/benchmark_heads.py --sizes 32 64 128     # growth with N
    python tools/analysis/benchmark_heads.py --only mmseg_nlhead snl --no-macs

The command line over :mod:`nlseg.analysis.head_benchmark`
(which says what is measured and written).
"""
import sys

from nlseg.analysis.head_benchmark import main

if __name__ == '__main__':
    sys.exit(main())
