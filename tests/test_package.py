import importlib
import subprocess
import sys

import pytest


def test_import_exposes_version():
    import nlseg
    assert isinstance(nlseg.__version__, str) and nlseg.__version__.count('.') == 2


def test_import_registers_modules():
    import nlseg  # noqa: F401
    from mmseg.registry import DATASETS, METRICS
    assert DATASETS.get('SyntheticContextDataset') is not None
    assert METRICS.get('ClassIoUMetric') is not None


def test_import_twice_is_harmless():
    import nlseg
    again = importlib.import_module('nlseg')
    assert again is nlseg
    # A fresh interpreter importing twice (and after mmseg) raises nothing.
    code = ('import mmseg.models, nlseg, importlib; importlib.import_module("nlseg"); '
            'import nlseg.models; print("ok")')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'ok'


@pytest.mark.parametrize('name', ['torch', 'mmcv', 'mmengine', 'mmseg'])
def test_stack_is_importable(name):
    importlib.import_module(name)
