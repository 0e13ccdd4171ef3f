"""Deployment benchmark: eager, torch.compile (inductor) and ONNX Runtime inference of every
nlseg head, with the graph breaks of torch.compile, on the CPU.

    python tools/analysis/benchmark_deploy.py --size 32 --in-channels 64 --channels 32
    python tools/analysis/benchmark_deploy.py --cases nonlocal --only snl --threads 2

The command line over :mod:`nlseg.analysis.deploy_benchmark`
(which says what is measured and written).
"""
import sys

from nlseg.analysis.deploy_benchmark import main

if __name__ == '__main__':
    sys.exit(main())
