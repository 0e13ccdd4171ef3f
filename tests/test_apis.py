"""mmseg's Python APIs with nlseg configs and checkpoints: ``init_model`` +
``inference_model`` and ``MMSegInferencer(model=CONFIG, weights=CHECKPOINT)``, on the CPU.

The checkpoint is written on the fly from the demo config's model (random weights, no
download) in the layout mmengine saves: ``state_dict`` plus ``meta.dataset_meta`` (classes
and palette, which the APIs hand to the visualiser). It loads under torch's default
``weights_only=True``. The README's "Python API" example is run as written, in a fresh
interpreter that does not import nlseg itself (the config's ``custom_imports`` does).
"""
from __future__ import annotations

import os.path as osp
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import nlseg  # noqa: F401  (registers nlseg's modules)
from nlseg.datasets.synthetic_context import SyntheticContextDataset
from tests.helpers import tool_env

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
NL = 'configs/demo/nl_r18s3-d8_450iter_synthetic-context-64x64.py'
# NLTVHead iterates its solver at test time until the duality gap reaches 1e-5, at most 1500
# steps, at the logits' resolution (8 x 6 here). With random weights the gap never gets there:
# 1500 steps, measured 0.6 s to 12 s per image on 2 busy cores (36 s for the inferencer test),
# so the NLTV tests run a copy of the config with test_iters=100, passed as a Config object
# (both APIs take one). The checkpoint is the same: test_iters holds no weights.
NLTV = 'configs/demo/nltv-fcn_r18s3-d8_450iter_synthetic-context-64x64.py'
NLTV_TEST_ITERS = 100
DATASET_META = dict(classes=SyntheticContextDataset.METAINFO['classes'],
                    palette=SyntheticContextDataset.METAINFO['palette'])
H, W = 64, 48  # not square, not the training crop: the prediction must follow the image


def _write_checkpoint(config: str, path: str) -> dict:
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert cfg.model.backbone.get('pretrained') is None and 'init_cfg' not in cfg.model.backbone
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    model.init_weights()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(dataset_meta=DATASET_META)), path)
    return state


def _api_config(config: str):
    """What the tests hand to the APIs: the config's path, or for NLTV a Config copy."""
    if config != NLTV:
        return osp.join(ROOT, config)
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.decode_head.nltv.test_iters = NLTV_TEST_ITERS
    return cfg


@pytest.fixture(scope='module', params=[NL, NLTV], ids=['nl', 'nltv'])
def checkpoint(request, tmp_path_factory):
    config = request.param
    path = str(tmp_path_factory.mktemp('ckpt') / 'model.pth')
    state = _write_checkpoint(config, path)
    torch.load(path)  # torch's default weights_only=True
    return config, path, state


def _image(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (H, W, 3), dtype=np.uint8)


def _assert_weights(model: torch.nn.Module, state: dict) -> None:
    got = model.state_dict()
    assert set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key].cpu(), value), key


def test_init_model_and_inference_model(checkpoint):
    from mmseg.apis import inference_model, init_model
    from mmseg.structures import SegDataSample
    config, path, state = checkpoint
    model = init_model(_api_config(config), path, device='cpu')
    assert not model.training
    _assert_weights(model, state)
    assert model.dataset_meta['classes'] == DATASET_META['classes']
    assert model.dataset_meta['palette'] == DATASET_META['palette']

    calls = []
    if config == NLTV:  # the regularised softmax runs, in eval mode
        assert model.decode_head.nltv.test_iters == NLTV_TEST_ITERS
        model.decode_head.nltv.register_forward_hook(
            lambda module, args, out: calls.append(module.training))
    result = inference_model(model, _image())
    assert calls == ([False] if config == NLTV else [])
    assert isinstance(result, SegDataSample)
    assert tuple(result.pred_sem_seg.shape) == (H, W)
    assert tuple(result.seg_logits.data.shape) == (len(DATASET_META['classes']), H, W)
    pred = result.pred_sem_seg.data
    assert pred.shape == (1, H, W)
    assert int(pred.min()) >= 0 and int(pred.max()) < len(DATASET_META['classes'])
    assert torch.equal(pred[0], result.seg_logits.data.argmax(0))

    # a list of images gives a list of results; the same image, the same prediction
    results = inference_model(model, [_image(), _image(1)])
    assert isinstance(results, list) and len(results) == 2
    assert torch.equal(results[0].pred_sem_seg.data, pred)


def test_mmseg_inferencer(checkpoint, tmp_path):
    from mmcv import imread, imwrite
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    config, path, state = checkpoint
    inferencer = MMSegInferencer(model=_api_config(config), weights=path, device='cpu')
    _assert_weights(inferencer.model, state)
    assert inferencer.model.dataset_meta['classes'] == DATASET_META['classes']

    out = inferencer(_image(), out_dir=str(tmp_path))
    pred = out['predictions']
    assert isinstance(pred, np.ndarray) and pred.shape == (H, W)
    # the inferencer's pipeline and weights give init_model's prediction
    model = init_model(_api_config(config), path, device='cpu')
    expected = inference_model(model, _image()).pred_sem_seg.data[0].numpy()
    np.testing.assert_array_equal(pred, expected)
    # out_dir: the painted picture and the class-index map
    vis = imread(str(tmp_path / 'vis' / '00000000_vis.jpg'))
    assert vis.shape == (H, W, 3)
    saved = imread(str(tmp_path / 'pred' / '00000000_pred.png'), flag='unchanged')
    np.testing.assert_array_equal(saved, pred)

    # an image file gives the same (mmcv reads it as BGR, as the arrays are taken)
    imwrite(_image(), str(tmp_path / 'image.png'))
    out = inferencer(str(tmp_path / 'image.png'))
    np.testing.assert_array_equal(out['predictions'], pred)

    # two images at once; return_datasamples gives mmseg's SegDataSamples themselves
    samples = inferencer([_image(), _image(1)], return_datasamples=True)
    assert isinstance(samples, list) and len(samples) == 2
    assert tuple(samples[1].pred_sem_seg.shape) == (H, W)
    np.testing.assert_array_equal(samples[0].pred_sem_seg.data[0].numpy(), pred)


def _readme_example() -> str:
    """The code block of the README's "Python API" section."""
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert '\n### Python API\n' in text
    section = re.split(r'\n#{1,3} ', text.split('\n### Python API\n', 1)[1])[0]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def _substitute(code: str, pattern: str, value: str) -> str:
    code, count = re.subn(pattern, value, code, flags=re.M)
    assert count == 1, pattern
    return code


def test_readme_example_in_a_fresh_interpreter(tmp_path):
    """The README's example, as written there with the checkpoint, image and output paths
    pointed at tmp_path, in a fresh interpreter: the config's custom_imports imports nlseg
    (the script does not), and the checkpoint loads with weights_only=True."""
    from mmcv import imwrite
    path = str(tmp_path / 'iter_450.pth')
    _write_checkpoint(NL, path)
    imwrite(_image(), str(tmp_path / '0000.png'))
    code = _readme_example()
    assert f'config = {NL!r}\n' in code
    assert 'nlseg' not in code.replace(NL, '')
    code = _substitute(code, r"^checkpoint = '[^']+'", f'checkpoint = {path!r}')
    code = _substitute(code, r"^image = '[^']+'", f"image = {str(tmp_path / '0000.png')!r}")
    code = _substitute(code, r"out_dir='outputs'", f"out_dir={str(tmp_path / 'out')!r}")
    script = code + textwrap.dedent("""
        import sys
        print('init_model', tuple(result.pred_sem_seg.shape))
        print('inferencer', mask.shape)
        print('same:', bool((mask == result.pred_sem_seg.data[0].numpy()).all()))
        print('nlseg imported by the config:', 'nlseg' in sys.modules)
        """)
    proc = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=tool_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'init_model ({H}, {W})' in proc.stdout
    assert f'inferencer ({H}, {W})' in proc.stdout
    assert 'same: True' in proc.stdout
    assert 'nlseg imported by the config: True' in proc.stdout
    # as the README says: a file input is painted under its own name, predictions numbered
    assert osp.isfile(tmp_path / 'out' / 'vis' / '0000.png')
    assert osp.isfile(tmp_path / 'out' / 'pred' / '00000000_pred.png')
