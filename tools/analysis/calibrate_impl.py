"""Measure where the dense path of each kernel stops being faster than the efficient one, and
(with ``--write``) store the crossovers in ``nlseg/ops/kernels/crossovers.json`` (package data
that ``impl='auto'`` reads; ``--table-path`` writes elsewhere).

    OMP_NUM_THREADS=2 python tools/analysis/calibrate_impl.py            # print only
    OMP_NUM_THREADS=2 python tools/analysis/calibrate_impl.py --write --note "shared machine"
    python tools/analysis/calibrate_impl.py --kernels softmax --channels 64 --sizes 64 256 1024

The command line over :mod:`nlseg.analysis.impl_calibration`
(which says what is measured and written; the runs are logged in docs/impl_auto.md).
"""
from nlseg.analysis.impl_calibration import main

if __name__ == '__main__':
    main()
