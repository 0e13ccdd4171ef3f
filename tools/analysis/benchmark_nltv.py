"""Benchmark of the NLTV-regularised softmax, each measurement in a fresh process.

    python tools/analysis/benchmark_nltv.py [--device cpu] [--threads N] [--skip-large]
        [--sections parts,graph,recipe] [--real-data DIR]

The command line over :mod:`nlseg.analysis.nltv_benchmark`
(which says what is measured and written).
"""
import sys

from nlseg.analysis.nltv_benchmark import main

if __name__ == '__main__':
    sys.exit(main())
