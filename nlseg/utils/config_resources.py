"""Parameters and FLOPs of every method config, as columns of the READMEs' config tables.

For every config leaf ``configs/<method>/*.py`` of the method folders
(:data:`nlseg.utils.model_index.COLLECTIONS`: the method matrix and the paper recipes) this
module counts the inference network's parameters and multiply-adds at the config's
``crop_size`` (:func:`config_resources`: :func:`nlseg.utils.complexity.complexity_info` on
:func:`nlseg.utils.complexity.build_eval_segmentor`, without the auxiliary head, one
``(1, 3, H, W)`` tensor forward up to the logits at feature resolution, exactly what
``tools/analysis/get_flops.py CONFIG --shape H W`` prints), and writes them into the
"## Configs" table of ``configs/<method>/README.md``.

Figures are kept, per folder, in ``configs/<method>/resources.json`` with a fingerprint of
the config's resolved ``model`` dict and crop: a config whose model changes has no figures
until it is counted again, which ``--check`` reports. The "## Configs" table is generated
from that file (its rows keep their order; a new config gets a row, a removed one loses
it), so ``--check`` is fast: it only loads the configs (``tools/analysis/config_resources.py``).
A change to a head's code that changes its figures without changing any config needs
``--recompute``.

The "## Our results" table, which :mod:`nlseg.utils.model_index` parses, is not touched.

NLTV: the eval-mode solver stops at a data-dependent duality gap (up to 1500 PDHG steps);
its iterations are element-wise, gather and scatter ops, which the counter counts zero, so
the count does not depend on the number of iterations, and the kNN graph's distances and
top-k count zero too. So an NLTV config is counted as its base network (the decode head
replaced by its ``base_head``; :data:`NLTV_OPTIONS` still sets one solver iteration): the
same figures as tracing the whole head, where that can be traced (the R-50 configs), and
no dense N^2 graph search traced at full resolution (see :data:`NLTV_FOOTNOTE`).
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import re
import textwrap
import time
from typing import Callable, Optional

from .model_index import COLLECTIONS, Collection, config_leaves, parse_config_name

RESOURCES = 'resources.json'
SECTION = '## Configs'
NLTV_OPTIONS = {'model.decode_head.nltv.test_iters': 1, 'model.decode_head.nltv.tol': None}
HEADER = ['Config', 'Backbone', 'Data set', 'Crop', 'Params (M)', 'FLOPs (G)',
          'FLOPs, mmengine (G)']
DATASET_LABELS = {
    'voc12aug': 'VOC 2012 aug', 'pascal-context-59': 'Pascal Context 59',
    'pascal-context': 'Pascal Context', 'cityscapes': 'Cityscapes', 'ade20k': 'ADE20K',
    'camvid': 'CamVid', 'wbc': 'WBC'}
GENERATOR = 'tools/analysis/config_resources.py'
FOOTNOTE = (
    f'Params and FLOPs (written by `{GENERATOR}`, as `tools/analysis/get_flops.py CONFIG '
    '--shape H W` prints them): the inference network (backbone and decode head, no '
    'auxiliary head) on one crop of the config\'s `crop_size`, up to the logits at feature '
    'resolution. FLOPs are multiply-adds (mmengine\'s unit). "FLOPs" is the completed count '
    'of `nlseg.utils.complexity` (adds the attention, `linalg_solve` and `baddbmm` products '
    'that mmengine leaves at zero), "mmengine" mmengine\'s own count (what mmseg\'s model '
    'zoo reports); element-wise ops (softmax, normalisation of the affinity, NMF/VQ updates) '
    'count zero in both.')
NLTV_FOOTNOTE = (
    ' NLTV: counted as its base network (backbone and FCN head): the solver\'s iterations '
    '(element-wise, gather and scatter ops) and the kNN graph\'s distances and top-k count '
    'zero and hold no parameters (traced with one and with three solver iterations, the '
    'R-50 configs gave the base network\'s count); the UNet configs\' image graph at full '
    'resolution cannot be traced (the traced search is the dense one, N^2 distances). The '
    'UNet configs\' crops are padded to a multiple of 16, as their data preprocessor pads '
    'a test image.')


def method_collections(folders: Optional[list[str]] = None) -> list[Collection]:
    known = {c.folder: c for c in COLLECTIONS}
    if folders is None:
        return list(COLLECTIONS)
    unknown = sorted(set(folders) - set(known))
    if unknown:
        raise ValueError(f'unknown method folders {unknown}; known: {sorted(known)}')
    return [known[f] for f in folders]


def _load_config(root: str, rel: str):
    from mmengine.config import Config
    return Config.fromfile(osp.join(root, rel))


def counting_options(cfg) -> dict:
    """The cfg options the count runs with (NLTV: one solver iteration)."""
    head = cfg.model.get('decode_head', {})
    return dict(NLTV_OPTIONS) if isinstance(head, dict) and \
        head.get('type') == 'NLTVHead' else {}


def crop_of(cfg, stem: str) -> tuple[int, int]:
    crop = cfg.get('crop_size')
    if crop is None:
        m = re.search(r'-(\d+)x(\d+)$', stem)
        if m is None:
            raise ValueError(f'{stem}: no crop_size and no <H>x<W> in the name')
        crop = (int(m.group(1)), int(m.group(2)))
    return int(crop[0]), int(crop[1])


def padded_crop(cfg, crop: tuple[int, int]) -> tuple[int, int]:
    """``crop`` padded up to a multiple of the data preprocessor's test-time
    ``size_divisor`` (as the preprocessor pads a test image; the UNet s5-d16 configs need
    sides divisible by 16), unchanged without one."""
    pre = cfg.model.get('data_preprocessor') or {}
    divisor = (pre.get('test_cfg') or {}).get('size_divisor') or pre.get('size_divisor')
    if not divisor:
        return crop
    return tuple(-(-int(c) // int(divisor)) * int(divisor) for c in crop)


def fingerprint(cfg, crop: tuple[int, int], options: dict) -> str:
    """sha1 of the resolved ``model`` dict, the crop and the counting options."""
    payload = dict(model=cfg.model.to_dict(), crop=list(crop), options=options)
    if options:  # NLTV: counted as its base network (see config_resources)
        payload['counted'] = 'nltv base network'
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def config_resources(root: str, rel: str) -> dict:
    """Count one config: ``dict(params, flops, flops_mmengine, crop, options, fingerprint,
    seconds)``."""
    import torch

    from .complexity import build_eval_segmentor, complexity_info

    cfg = _load_config(root, rel)
    stem = osp.splitext(osp.basename(rel))[0]
    crop = crop_of(cfg, stem)
    options = counting_options(cfg)
    key = fingerprint(cfg, crop, options)
    start = time.perf_counter()
    model = build_eval_segmentor(cfg, cfg_options=options or None)
    if getattr(model, 'with_auxiliary_head', False):
        model.auxiliary_head = None
    if type(model.decode_head).__name__ == 'NLTVHead':
        # the graph and the PDHG count zero (element-wise, gather, top-k) and hold no
        # parameters: count the base network, without tracing the graph search (its traced
        # path is the dense one-shot search, N^2 distances: 125 GB at 360 x 480)
        model.decode_head = model.decode_head.base_head
    inputs = torch.randn(1, 3, *padded_crop(cfg, crop),
                         generator=torch.Generator().manual_seed(0))
    info = complexity_info(model, inputs)
    return dict(params=info['params'], flops=info['flops'],
                flops_mmengine=info['flops_mmengine'], crop=list(crop), options=options,
                fingerprint=key, seconds=round(time.perf_counter() - start, 1))


# --------------------------------------------------------------------------- the cache file
def resources_path(root: str, folder: str) -> str:
    return osp.join(root, 'configs', folder, RESOURCES)


def load_resources(root: str, folder: str) -> dict:
    path = resources_path(root, folder)
    if not osp.isfile(path):
        return {}
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def save_resources(root: str, folder: str, data: dict) -> None:
    path = resources_path(root, folder)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(dict(sorted(data.items())), f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(tmp, path)  # atomic: an interrupted run keeps every figure counted so far


def current_fingerprints(root: str, folder: str) -> dict[str, str]:
    out = {}
    for rel in config_leaves(root, folder):
        cfg = _load_config(root, rel)
        stem = osp.splitext(osp.basename(rel))[0]
        out[stem] = fingerprint(cfg, crop_of(cfg, stem), counting_options(cfg))
    return out


def missing(root: str, folder: str, fingerprints: Optional[dict] = None) -> list[str]:
    """Stems whose figures are absent or were counted for another model/crop."""
    fingerprints = fingerprints or current_fingerprints(root, folder)
    data = load_resources(root, folder)
    return [stem for stem, key in fingerprints.items()
            if data.get(stem, {}).get('fingerprint') != key]


def update_resources(root: str, folder: str, recompute: bool = False,
                     only: Optional[list[str]] = None,
                     log: Callable[[str], None] = print) -> list[str]:
    """Count the configs of ``folder`` that have no current figures (all with
    ``recompute``; ``only``: stems containing one of these strings), saving after each one
    (resumable). Figures of removed configs are dropped. Returns the stems counted."""
    fingerprints = current_fingerprints(root, folder)
    data = {k: v for k, v in load_resources(root, folder).items() if k in fingerprints}
    todo = list(fingerprints) if recompute else missing(root, folder, fingerprints)
    if only:
        todo = [s for s in todo if any(o in s for o in only)]
    for stem in todo:
        data[stem] = config_resources(root, f'configs/{folder}/{stem}.py')
        save_resources(root, folder, data)
        log(f'{folder}/{stem}: params {data[stem]["params"] / 1e6:.2f}M, FLOPs '
            f'{data[stem]["flops"] / 1e9:.1f}G ({data[stem]["seconds"]} s)')
    if set(data) != set(load_resources(root, folder)):
        save_resources(root, folder, data)
    return todo


# ------------------------------------------------------------------------- the README table
def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip('|').split('|')]


def _row_stem(cells: list[str]) -> Optional[str]:
    m = re.search(r'\(\./([^)\s/]+)\.py\)', cells[0]) if cells else None
    return m.group(1) if m else None


def _section(text: str) -> tuple[int, int]:
    m = re.search(rf'^{re.escape(SECTION)}\s*$(.*?)(?=^## |\Z)', text, re.M | re.S)
    if m is None:
        raise ValueError(f'no "{SECTION}" section')
    return m.start(1), m.end(1)


def render_section(body: str, stems: list[str], data: dict) -> str:
    """The "## Configs" section body with the generated table: the existing rows' order and
    Backbone / Data set cells are kept, new configs are appended (sorted)."""
    lines = body.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith('|')]
    if not table:
        raise ValueError(f'"{SECTION}" has no table')
    first, last = table[0], table[-1]
    old: dict[str, list[str]] = {}
    for line in lines[first + 2:last + 1]:
        cells = _cells(line)
        stem = _row_stem(cells)
        if stem is not None:
            old[stem] = cells
    order = [s for s in old if s in stems] + sorted(s for s in stems if s not in old)
    rows = ['| ' + ' | '.join(HEADER) + ' |', '| ' + ' | '.join(['---'] * len(HEADER)) + ' |']
    nltv = False
    for stem in order:
        if stem in old:
            backbone, dataset = old[stem][1], old[stem][2]
        else:
            name = parse_config_name(stem)
            backbone, dataset = name.architecture[0], DATASET_LABELS[name.dataset]
        entry = data.get(stem)
        if entry is None:
            figures = ['-', '-', '-', '-']
        else:
            nltv = nltv or bool(entry['options'])
            figures = [f"{entry['crop'][0]}x{entry['crop'][1]}", f"{entry['params'] / 1e6:.2f}",
                       f"{entry['flops'] / 1e9:.1f}", f"{entry['flops_mmengine'] / 1e9:.1f}"]
        rows.append(f'| [{stem}.py](./{stem}.py) | {backbone} | {dataset} | ' +
                    ' | '.join(figures) + ' |')
    # drop the previous footnote (the paragraph right after the table that starts like ours)
    after = lines[last + 1:]
    while after and after[0].strip() == '':
        after.pop(0)
    if after and after[0].startswith(FOOTNOTE[:40]):
        while after and after[0].strip() != '':
            after.pop(0)
        while after and after[0].strip() == '':
            after.pop(0)
    note = textwrap.wrap(FOOTNOTE + (NLTV_FOOTNOTE if nltv else ''), width=92,
                         break_on_hyphens=False, break_long_words=False)
    out = lines[:first] + rows + [''] + note + [''] + after
    return '\n'.join(out).rstrip('\n') + '\n\n'


def render_readme(root: str, folder: str, text: Optional[str] = None) -> str:
    path = osp.join(root, 'configs', folder, 'README.md')
    if text is None:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    stems = [osp.splitext(osp.basename(r))[0] for r in config_leaves(root, folder)]
    start, end = _section(text)
    body = render_section(text[start:end], stems, load_resources(root, folder))
    if end < len(text):
        return text[:start] + body + text[end:]
    return text[:start] + body.rstrip('\n') + '\n'


def readme_table(root: str, folder: str) -> dict[str, dict[str, str]]:
    """The README's "## Configs" table as {stem: {column: cell}}."""
    with open(osp.join(root, 'configs', folder, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    start, end = _section(text)
    lines = [line for line in text[start:end].splitlines() if line.startswith('|')]
    header = _cells(lines[0])
    return {_row_stem(c): dict(zip(header, c)) for c in map(_cells, lines[2:])
            if _row_stem(c)}


def stale(root: str, folders: Optional[list[str]] = None) -> list[str]:
    """What ``--check`` reports: configs without current figures, READMEs that differ from
    the generated table."""
    problems = []
    for collection in method_collections(folders):
        folder = collection.folder
        for stem in missing(root, folder):
            problems.append(f'configs/{folder}/{stem}.py: no figures for its current model '
                            f'and crop in configs/{folder}/{RESOURCES}')
        path = osp.join(root, 'configs', folder, 'README.md')
        with open(path, encoding='utf-8') as f:
            text = f.read()
        if render_readme(root, folder, text) != text:
            problems.append(f'configs/{folder}/README.md: "{SECTION}" table is stale')
    return problems


def write_readmes(root: str, folders: Optional[list[str]] = None) -> list[str]:
    written = []
    for collection in method_collections(folders):
        path = osp.join(root, 'configs', collection.folder, 'README.md')
        with open(path, encoding='utf-8') as f:
            text = f.read()
        new = render_readme(root, collection.folder, text)
        if new != text:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(new)
            written.append(osp.relpath(path, root))
    return written
