"""nlseg's build hook; the package metadata is in pyproject.toml.

A wheel (``pip wheel .``, ``python -m build``, ``pip install .``) carries the repository's
configs, its command-line tools and its model index as package data under ``nlseg/.mim/``,
mmseg's convention, where ``mim train/test/search nlseg`` look for them:

    nlseg/.mim/configs/...            (configs/**: every config, metafile and README)
    nlseg/.mim/model-index.yml        (imports configs/<method>/metafile.yaml)
    nlseg/.mim/tools/train.py, ...    (MIM_TOOLS below)

mmseg's setup.py copies the folders into the source tree (``mmseg/.mim``) before a wheel build
and symlinks them for ``setup.py develop``. Here ``build_py`` copies them into the build
folder instead, so the checkout is never written to; an editable install
(``pip install -e .``) ships nothing and the checkout's configs and tools stay where they are.
"""
import os
import os.path as osp
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))

#: what a wheel carries under nlseg/.mim: paths relative to the repository root (a folder is
#: copied whole, less __pycache__ and compiled files)
MIM_FILES = ['configs', 'model-index.yml']
#: the tools that work from an installed wheel: training and testing (mim's train/test run
#: tools/train.py and tools/test.py), the demo data, deployment, checkpoint and data set
#: converters, FLOPs and visualisation. Left out: tools/misc (generators that rewrite the
#: checkout), tools/run_demo.py and the benchmark/table scripts of tools/analysis (they write
#: into the checkout's work_dirs and docs).
MIM_TOOLS = [
    'tools/train.py',
    'tools/test.py',
    'tools/dist_train.sh',
    'tools/dist_test.sh',
    'tools/make_demo_data.py',
    'tools/deployment',
    'tools/model_converters',
    'tools/dataset_converters',
    'tools/analysis/get_flops.py',
    'tools/analysis/visualize.py',
]
_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.pyo')


def copy_mim_files(dest: str, root: str = HERE) -> list:
    """Copy MIM_FILES and MIM_TOOLS from ``root`` into ``dest`` (``.../nlseg/.mim``), replacing
    what is there; return the files written."""
    if osp.isdir(dest):
        shutil.rmtree(dest)
    for rel in MIM_FILES + MIM_TOOLS:
        src = osp.join(root, rel)
        dst = osp.join(dest, rel)
        if not osp.exists(src):
            raise FileNotFoundError(f'nlseg wheel: {rel} is missing from {root}')
        os.makedirs(osp.dirname(dst), exist_ok=True)
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=_IGNORE)
        else:
            shutil.copy2(src, dst)
    return [osp.join(d, f) for d, _, files in os.walk(dest) for f in files]


class BuildPyWithMim(build_py):
    """build_py that also writes nlseg/.mim into the build folder (not in editable mode)."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        self._mim_outputs = copy_mim_files(osp.join(self.build_lib, 'nlseg', '.mim'))

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + list(getattr(self, '_mim_outputs', []))


setup(cmdclass={'build_py': BuildPyWithMim})
