"""The model index (model-index.yml and configs/<method>/metafile.yaml, mmseg 1.x's schema)
lists every config of the method folders once, points at files that exist, holds only
results measured by this project, and is what tools/misc/generate_model_index.py writes."""
from __future__ import annotations

import collections
import glob
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import yaml

from nlseg.utils import model_index as mi
from tests.helpers import ROOT, tool_env

TOOL = osp.join(ROOT, 'tools', 'misc', 'generate_model_index.py')


def _load(rel: str):
    with open(osp.join(ROOT, rel), encoding='utf-8') as f:
        return yaml.safe_load(f)


INDEX = _load('model-index.yml')
METAFILES = {rel: _load(rel) for rel in INDEX['Import']}
MODELS = [m for meta in METAFILES.values() for m in meta['Models']]
COLLECTION_NAMES = [c['Name'] for meta in METAFILES.values() for c in meta['Collections']]


def _method_leaves() -> list[str]:
    return sorted(osp.relpath(p, ROOT).replace(osp.sep, '/')
                  for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
                  if osp.basename(osp.dirname(p)) not in mi.NOT_METHODS)


def test_index_imports_every_method_metafile():
    assert list(INDEX) == ['Import']
    folders = sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', '*'))
                     if osp.isdir(p) and osp.basename(p) not in mi.NOT_METHODS)
    assert folders == sorted(c.folder for c in mi.COLLECTIONS)  # a new folder needs an entry
    assert INDEX['Import'] == sorted(f'configs/{f}/metafile.yaml' for f in folders)
    for rel, meta in METAFILES.items():
        assert osp.isfile(osp.join(ROOT, rel))
        assert set(meta) == {'Collections', 'Models'}, rel
        assert len(meta['Collections']) == 1 and meta['Models'], rel


def test_every_config_path_exists():
    for m in MODELS:
        assert osp.isfile(osp.join(ROOT, m['Config'])), m['Config']
        assert m['Name'] == osp.basename(m['Config'])[:-3]


def test_every_method_config_is_listed_exactly_once():
    counts = collections.Counter(m['Config'] for m in MODELS)
    leaves = _method_leaves()
    assert len(leaves) > 90  # the matrix, the UNet NLTV configs and the paper recipes
    assert {c: n for c, n in counts.items() if n != 1} == {}
    assert sorted(counts) == leaves
    # and each under its own folder's metafile
    for rel, meta in METAFILES.items():
        folder = osp.dirname(rel)
        assert all(osp.dirname(m['Config']) == folder for m in meta['Models']), rel


def test_model_names_are_unique_and_new_to_mmseg():
    names = [m['Name'] for m in MODELS]
    assert len(names) == len(set(names))
    # mim searches nlseg's and mmseg's indexes together: no name may shadow one of mmseg's
    import mmseg
    mim_index = osp.join(osp.dirname(mmseg.__file__), '.mim', 'model-index.yml')
    if not osp.exists(mim_index):
        pytest.skip('mmseg installed without its .mim model index')
    with open(mim_index, encoding='utf-8') as f:
        imports = yaml.safe_load(f)['Import']
    theirs = set()
    for rel in imports:
        with open(osp.join(osp.dirname(mim_index), rel), encoding='utf-8') as f:
            theirs |= {m['Name'] for m in yaml.safe_load(f)['Models']}
    assert theirs and not set(names) & theirs


def test_collections_are_defined_once_and_complete():
    assert len(COLLECTION_NAMES) == len(set(COLLECTION_NAMES))
    for m in MODELS:
        assert m['In Collection'] in COLLECTION_NAMES, m['Name']
    for rel, meta in METAFILES.items():
        (c,) = meta['Collections']
        assert c['License'] == 'Apache License 2.0'
        assert c['Frameworks'] == ['PyTorch']
        assert c['Paper']['Title']
        assert c['Paper'].get('URL', 'https://').startswith('https://')
        assert c['README'] == osp.join(osp.dirname(rel), 'README.md')
        assert osp.isfile(osp.join(ROOT, c['README']))
        trained_on = {m['Metadata']['Training Data'] for m in meta['Models']}
        assert set(c['Metadata']['Training Data']) == trained_on
        assert {m['In Collection'] for m in meta['Models']} == {c['Name']}


def test_model_entries_follow_mmseg_schema():
    labels = {label for label, _ in mi.DATASETS.values()}
    for m in MODELS:
        assert list(m)[:5] == ['Name', 'In Collection', 'Results', 'Config', 'Metadata']
        meta = m['Metadata']
        assert meta['Training Data'] in labels
        assert isinstance(meta['Batch Size'], int) and meta['Batch Size'] > 0
        assert meta['Architecture'][0].startswith(('R-', 'UNet-'))
        assert 'Weights' not in m  # nothing published
        assert 'Training Resources' not in meta and 'Memory (GB)' not in meta  # not measured
        assert isinstance(m['Results'], list)
        for r in m['Results']:
            assert r['Task'] == 'Semantic Segmentation'
            assert r['Dataset'] in labels
            assert r['Metrics'] and all(isinstance(v, float) for v in r['Metrics'].values())


def test_results_hold_only_our_measurements():
    """No config has been trained by this project yet (every README's "Our results" table is
    empty), so no Results at all: in particular none of the papers' published figures."""
    for rel, meta in METAFILES.items():
        with open(osp.join(ROOT, osp.dirname(rel), 'README.md'), encoding='utf-8') as f:
            readme = f.read()
        assert mi.measured_results(readme, [m['Name'] for m in meta['Models']]) == {}, rel
    assert [m['Name'] for m in MODELS if m['Results']] == []


def _one_per_pattern() -> list[str]:
    """One config per (GPUs, batch per GPU, data set, backbone) of the names."""
    picked = {}
    for m in MODELS:
        n = mi.parse_config_name(m['Name'])
        picked.setdefault((n.gpus, n.batch_per_gpu, n.dataset, n.architecture[0]), m['Config'])
    return sorted(picked.values())


@pytest.mark.parametrize('rel', _one_per_pattern())
def test_metadata_agrees_with_the_config(rel):
    """The metadata is read from the name; the config says the same."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, rel), import_custom_modules=False)
    (model,) = [m for m in MODELS if m['Config'] == rel]
    name = mi.parse_config_name(model['Name'])
    assert cfg.train_dataloader.batch_size == name.batch_per_gpu
    assert model['Metadata']['Batch Size'] == name.gpus * cfg.train_dataloader.batch_size
    label, dataset_type = mi.DATASETS[name.dataset]
    assert model['Metadata']['Training Data'] == label
    assert cfg.test_dataloader.dataset.type == dataset_type
    backbone = model['Metadata']['Architecture'][0]
    if backbone.startswith('R-'):
        depth = int(backbone.split('-')[1])
        assert cfg.model.backbone.depth == depth


def test_files_are_up_to_date():
    assert mi.stale_files(ROOT) == [], f'run python {osp.relpath(TOOL, ROOT)}'


def test_parse_config_name():
    n = mi.parse_config_name('nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300')
    assert (n.architecture, n.batch_size, n.dataset) == (
        ('UNet-S5-D16', 'UNet', 'FCN', 'NLTV'), 3, 'wbc')
    n = mi.parse_config_name('deeplabv3-gsnl_r50-d8_4xb4-50e_voc12aug-513x513')
    assert (n.architecture, n.batch_size, n.dataset) == (
        ('R-50-D8', 'DeepLabV3', 'gSNL'), 16, 'voc12aug')
    n = mi.parse_config_name('ham-nmf_r101-d8_4xb4-40k_pascal-context-59-480x480')
    assert (n.architecture, n.dataset) == (('R-101-D8', 'Hamburger', 'NMF'), 'pascal-context-59')
    for bad in ('nl_r50-d8_4xb4-40k', 'foo_r50-d8_4xb4-40k_voc12aug-512x512',
                'nl_vit-b16_4xb4-40k_voc12aug-512x512', 'nl_r50-d8_4xb4-40k_coco-512x512',
                'nl_r50-d8_40k_voc12aug-512x512'):
        with pytest.raises(ValueError):
            mi.parse_config_name(bad)


README = """# X

## Published results (not measured by this project)

| Source | Setting | mIoU | Recipe config |
| ------ | ------- | ---- | ------------- |
| paper | VOC | 99.9 | [a](./nl_r50-d8_4xb4-40k_voc12aug-512x512.py) |

## Our results

Only figures measured by this project appear here.

| Method | Backbone | Crop | Lr schd | Data set | mIoU (ss) | mIoU (ms+flip) | config | log |
| ------ | -------- | ---- | ------- | -------- | --------- | -------------- | ------ | --- |
| NL | R-50-D8 | 512x512 | 40k | VOC | 76.5 | 77.25 | \
[config](./nl_r50-d8_4xb4-40k_voc12aug-512x512.py) | [log](https://example.org/nl.log.json) |
| NL | R-50-D8 | 300x300 | 20k | WBC | 90.1 | - | [config](./nl_r50-d8_4xb4-20k_wbc-300x300.py) | |

## Configs

| [nl_r101-d8_4xb4-20k_wbc-300x300.py](./nl_r101-d8_4xb4-20k_wbc-300x300.py) | 1.0 |
"""
STEMS = ['nl_r50-d8_4xb4-40k_voc12aug-512x512', 'nl_r50-d8_4xb4-20k_wbc-300x300',
         'nl_r101-d8_4xb4-20k_wbc-300x300']


def test_our_results_table_is_the_only_source():
    got = mi.measured_results(README, STEMS)
    assert got == {
        STEMS[0]: {'Results': [{'Task': 'Semantic Segmentation',
                                'Dataset': 'Pascal VOC 2012 + Aug',
                                'Metrics': {'mIoU': 76.5, 'mIoU(ms+flip)': 77.25}}],
                   'Training log': 'https://example.org/nl.log.json'},
        STEMS[1]: {'Results': [{'Task': 'Semantic Segmentation', 'Dataset': 'WBC',
                                'Metrics': {'mIoU': 90.1}}]},
    }  # the published 99.9 and the Configs table are not read
    with pytest.raises(ValueError, match='not a config of this folder'):
        mi.measured_results(README, STEMS[1:])
    with pytest.raises(ValueError, match='two rows'):
        mi.measured_results(README.replace(f'(./{STEMS[1]}.py)', f'(./{STEMS[0]}.py)'), STEMS)
    with pytest.raises(ValueError, match='no single-scale'):
        mi.measured_results(README.replace('| 90.1 |', '| - |'), STEMS)


def test_generator_writes_and_checks(tmp_path):
    """In a copy of configs/: a measured row reaches the metafile, --check flags it until the
    generator is rerun, and a new config without a metafile entry is flagged too."""
    root = tmp_path / 'repo'
    shutil.copytree(osp.join(ROOT, 'configs'), root / 'configs',
                    ignore=shutil.ignore_patterns('_base_', 'demo', 'real_data'))
    shutil.copy(osp.join(ROOT, 'model-index.yml'), root / 'model-index.yml')
    assert mi.stale_files(str(root)) == []
    readme = root / 'configs' / 'nl' / 'README.md'
    row = ('| NL | R-50-D8 | 300x300 | 20k | WBC | 90.1 | - | '
           '[config](./nl_r50-d8_4xb4-20k_wbc-300x300.py) | |\n')
    text = readme.read_text()
    anchor = '| ------ | -------- | ---- | ------- | -------- | --------- | -------------- | ' \
             '------ | --- |\n'
    head, tail = text.split('## Our results', 1)
    assert anchor in tail
    readme.write_text(head + '## Our results' + tail.replace(anchor, anchor + row, 1))
    assert mi.stale_files(str(root)) == ['configs/nl/metafile.yaml']

    proc = subprocess.run([sys.executable, TOOL, '--check', '--root', str(root)], cwd=ROOT,
                          env=tool_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '1 file(s) stale\n  configs/nl/metafile.yaml' in proc.stdout

    assert mi.write_model_index(str(root)) == ['configs/nl/metafile.yaml']
    assert mi.stale_files(str(root)) == []
    meta = yaml.safe_load((root / 'configs' / 'nl' / 'metafile.yaml').read_text())
    (model,) = [m for m in meta['Models'] if m['Name'] == 'nl_r50-d8_4xb4-20k_wbc-300x300']
    assert model['Results'] == [{'Task': 'Semantic Segmentation', 'Dataset': 'WBC',
                                 'Metrics': {'mIoU': 90.1}}]

    shutil.copy(root / 'configs' / 'nl' / 'nl_r50-d8_4xb4-20k_wbc-300x300.py',
                root / 'configs' / 'nl' / 'nl_r50-d8_4xb4-40k_wbc-300x300.py')
    assert mi.stale_files(str(root)) == ['configs/nl/metafile.yaml']
