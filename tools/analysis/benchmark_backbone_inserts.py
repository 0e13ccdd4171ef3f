"""Backbone-insert benchmark: peak memory and time of one training step of mmseg's dilated
ResNetV1c with one non-local block inserted in res2 or res3 (nlseg's or mmcv's).

    python tools/analysis/benchmark_backbone_inserts.py                   # R-50-D8, 1x3x512x512
    python tools/analysis/benchmark_backbone_inserts.py --only plain nlseg_res2 --size 256

The command line over :mod:`nlseg.analysis.backbone_insert_benchmark`
(which says what is measured and written).
"""
import sys

from nlseg.analysis.backbone_insert_benchmark import main

if __name__ == '__main__':
    sys.exit(main())
