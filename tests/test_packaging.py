"""The wheel stands alone: built from the checkout it carries the configs, the tools and the
model index under nlseg/.mim (mmseg's convention), and installed outside the repository
`mim search/train/test nlseg` work on it (setup.py, MANIFEST.in, README "nlseg as a wheel, with
mim"). Nothing is downloaded: pip runs with --no-index, --no-deps, --no-build-isolation."""
from __future__ import annotations

import glob
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # pip builds and installs the wheel; mim trains and tests

DEMO_CONFIG = 'fcn_r18s3-d8_450iter_synthetic-context-64x64.py'  # configs/demo/
MIM = '.mim/'
TOOLS = ['train.py', 'test.py', 'dist_train.sh', 'dist_test.sh', 'make_demo_data.py',
         'deployment/pytorch2onnx.py', 'model_converters/snl2nlseg.py',
         'dataset_converters/camvid.py', 'analysis/get_flops.py', 'analysis/visualize.py']


def _version() -> str:
    text = open(osp.join(ROOT, 'nlseg', 'version.py')).read()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


def _pip(*args: str, cwd: str = ROOT) -> None:
    env = dict(os.environ, PIP_NO_INDEX='1', PIP_DISABLE_PIP_VERSION_CHECK='1')
    out = subprocess.run([sys.executable, '-m', 'pip', *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f'pip {" ".join(args)}:\n{out.stdout}\n{out.stderr}'


def _build_wheel(src: str, out_dir: str) -> str:
    _pip('wheel', src, '--no-deps', '--no-build-isolation', '-q', '-w', out_dir)
    wheels = glob.glob(osp.join(out_dir, '*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _repo_files(folder: str) -> set:
    """The files under ROOT/folder that a wheel ships (no caches), relative to ROOT."""
    found = set()
    for d, dirs, files in os.walk(osp.join(ROOT, folder)):
        dirs[:] = [x for x in dirs if x != '__pycache__']
        found.update(osp.relpath(osp.join(d, f), ROOT).replace(os.sep, '/')
                     for f in files if not f.endswith(('.pyc', '.pyo')))
    return found


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> str:
    return _build_wheel('.', str(tmp_path_factory.mktemp('wheel')))


@pytest.fixture(scope='module')
def site(wheel, tmp_path_factory) -> str:
    target = str(tmp_path_factory.mktemp('install') / 'site')
    _pip('install', '--no-deps', '--target', target, wheel)
    return target


def test_wheel_is_named_and_has_metadata(wheel):
    # setuptools < 61 ignores [project] in pyproject.toml and writes UNKNOWN-0.0.0
    assert osp.basename(wheel) == f'nlseg-{_version()}-py3-none-any.whl'
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(f'nlseg-{_version()}.dist-info/METADATA').decode()
        top_level = zf.read(f'nlseg-{_version()}.dist-info/top_level.txt').decode().split()
    assert 'Name: nlseg' in meta and 'Requires-Dist: mmsegmentation' in meta
    assert top_level == ['nlseg']  # mim's package2module reads it


def test_wheel_carries_configs_tools_and_model_index(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        index = zf.read('nlseg/.mim/model-index.yml').decode()
    shipped = {n[len('nlseg/' + MIM):] for n in names if n.startswith('nlseg/' + MIM)}
    # every config, metafile and README of the checkout's configs/
    missing = _repo_files('configs') - shipped
    assert not missing, sorted(missing)[:10]
    assert f'configs/demo/{DEMO_CONFIG}' in shipped
    # the model index, as in the checkout, and each metafile it imports
    assert index == open(osp.join(ROOT, 'model-index.yml')).read()
    imports = re.findall(r'^- (configs/\S+/metafile\.yaml)$', index, flags=re.M)
    assert len(imports) >= 7 and all(i in shipped for i in imports), imports
    # the tools that work from an installed wheel, and not the checkout's maintenance ones
    assert {f'tools/{t}' for t in TOOLS} <= shipped
    assert not any(n.startswith(('tools/misc/', 'tools/analysis/bench')) for n in shipped)
    assert not any('__pycache__' in n or n.endswith('.pyc') for n in names)
    # the package itself (with the converters' library, which the shipped converter scripts
    # import), and nothing from the repository outside nlseg/
    assert {'nlseg/__init__.py', 'nlseg/converters/__init__.py', 'nlseg/converters/state_dict.py',
            'nlseg/converters/datasets/camvid.py'} <= names
    # the measured impl='auto' crossover table, package data beside the kernel registry
    assert {'nlseg/ops/kernels/__init__.py', 'nlseg/ops/kernels/crossovers.json'} <= names
    assert all(n.startswith(('nlseg/', 'nlseg-')) for n in names), sorted(names)[:5]


def test_sdist_builds_the_same_wheel(tmp_path):
    """`python -m build` makes an sdist, then the wheel from it: the sdist must carry what
    setup.py copies into nlseg/.mim (MANIFEST.in)."""
    code = ('import sys; from setuptools import build_meta; '
            'print(build_meta.build_sdist(sys.argv[1]))')
    out = subprocess.run([sys.executable, '-c', code, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    sdist = osp.join(tmp_path, out.stdout.strip().splitlines()[-1])
    with tarfile.open(sdist) as tf:
        kwargs = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
        tf.extractall(tmp_path / 'src', **kwargs)
    (src,) = glob.glob(str(tmp_path / 'src' / 'nlseg-*'))
    for rel in ('setup.py', 'model-index.yml', 'tools/train.py', f'configs/demo/{DEMO_CONFIG}'):
        assert osp.isfile(osp.join(src, rel)), rel
    whl = _build_wheel(src, str(tmp_path / 'dist'))
    assert osp.basename(whl) == f'nlseg-{_version()}-py3-none-any.whl'
    with zipfile.ZipFile(whl) as zf:
        names = set(zf.namelist())
    assert {'nlseg/.mim/model-index.yml', f'nlseg/.mim/configs/demo/{DEMO_CONFIG}',
            'nlseg/.mim/tools/train.py', 'nlseg/.mim/tools/test.py',
            'nlseg/ops/kernels/crossovers.json'} <= names


def test_editable_install_points_at_the_checkout(tmp_path):
    """`pip install -e .` (PEP 660): the editable wheel ships no copy of configs or tools
    and maps the nlseg package to the checkout, whose configs stay where they are."""
    code = ('import sys; from setuptools import build_meta; '
            'print(build_meta.build_editable(sys.argv[1]))')
    out = subprocess.run([sys.executable, '-c', code, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(tmp_path / out.stdout.strip().splitlines()[-1]) as zf:
        names = zf.namelist()
        text = ''.join(zf.read(n).decode() for n in names if n.endswith(('.py', '.pth')))
    assert not any(MIM in n for n in names), [n for n in names if MIM in n][:5]
    assert osp.join(ROOT, 'nlseg') in text or ROOT in text.splitlines(), text[:500]
    assert osp.isfile(osp.join(ROOT, 'configs', 'demo', DEMO_CONFIG))
    assert not osp.exists(osp.join(ROOT, 'nlseg', '.mim'))


def test_converter_scripts_run_from_the_installed_wheel(site, tmp_path):
    """The converters' command lines in nlseg/.mim/tools are thin scripts over the installed
    nlseg.converters: run outside the repository, they need no sibling file."""
    env = dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='1')
    tools = osp.join(site, 'nlseg', MIM, 'tools')
    for script, args, error in [
            ('model_converters/snl2nlseg.py', ['none.pth', 'out.pth'],
             "error: source checkpoint 'none.pth' does not exist"),
            ('dataset_converters/camvid.py', ['nowhere', '--out', 'camvid'],
             "error: source folder 'nowhere' does not exist")]:
        out = subprocess.run([sys.executable, osp.join(tools, script), *args], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 1 and out.stderr.startswith(error), out.stderr[-2000:]


def _mim(args: list, cwd, env) -> str:
    out = subprocess.run([sys.executable, '-m', 'mim', *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f'mim {" ".join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'
    return out.stdout + out.stderr


def test_mim_search_train_test_from_the_installed_wheel(site, tmp_path):
    if importlib.util.find_spec('mim') is None:
        pytest.skip("openmim is not installed: `make install`, or pip install "
                    "'openmim>=0.3.9,<0.4' 'opendatalab<0.0.10' (README, 'nlseg as a wheel')")
    import yaml

    work = tmp_path / 'outside'  # the working directory: outside the repository
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='1')
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.pop('TORCH_FORCE_WEIGHTS_ONLY_LOAD', None)

    # this nlseg is the wheel's, not the checkout's
    probe = ('import nlseg, mim; print(nlseg.__file__); '
             'from nlseg.datasets.synthetic_context_generator import generate_synthetic_context'
             ' as g; g("data", num_train=8, num_val=4, size=64, seed=0)')
    out = subprocess.run([sys.executable, '-c', probe], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(osp.join(site, 'nlseg', ''))
    data = str(work / 'data')

    # mim search: every model of the metafiles that model-index.yml imports
    expected = set()
    for mf in glob.glob(osp.join(site, 'nlseg', '.mim', 'configs', '*', 'metafile.yaml')):
        expected |= {m['Name'] for m in yaml.safe_load(open(mf))['Models']}
    listed = set(re.findall(r'^config id: (\S+)$', _mim(['search', 'nlseg'], work, env), re.M))
    assert len(expected) >= 90 and listed == expected, sorted(listed ^ expected)[:10]

    # mim train: the demo config found by its name in nlseg/.mim/configs, nlseg/.mim/tools/train.py
    loaders = [f'{s}_dataloader.{k}' for s in ('train', 'val', 'test')
               for k in (f'dataset.data_root={data}', 'num_workers=0', 'persistent_workers=False')]
    wd = str(work / 'wd')
    log = _mim(['train', 'nlseg', DEMO_CONFIG, '--work-dir', wd, '--cfg-options',
                'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
                *loaders], work, env)
    config = osp.join(site, 'nlseg', '.mim', 'configs', 'demo', DEMO_CONFIG)
    assert f'will use {config} instead' in log
    assert osp.join(site, 'nlseg', '.mim', 'tools', 'train.py') in log
    assert 'Training finished successfully' in log
    ckpt = osp.join(wd, 'iter_2.pth')
    assert osp.isfile(ckpt)

    # mim test: the same config name and the checkpoint, nlseg/.mim/tools/test.py
    log = _mim(['test', 'nlseg', DEMO_CONFIG, '--checkpoint', ckpt, '--work-dir',
                str(work / 'wd_test'), '--cfg-options', *loaders[6:]], work, env)
    assert osp.join(site, 'nlseg', '.mim', 'tools', 'test.py') in log
    assert re.search(r'Iter\(test\) \[1/1\].*mIoU: \d', log), log[-2000:]
    assert 'Testing finished successfully' in log
