"""Shared test helpers: tiny EncoderDecoder models and random batches, all on CPU."""
from __future__ import annotations

import copy
import os
import os.path as osp
from typing import Any

import torch


def tiny_backbone(out_channels_last: int = 512) -> dict:
    """A ResNetV1c-18 with output stride 8 (dilated last stages), no pretrained weights."""
    return dict(
        type='ResNetV1c',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        pretrained=None)


def encoder_decoder_cfg(decode_head: dict, auxiliary_head: dict | None = None,
                        size: int = 64):
    """An mmseg EncoderDecoder config around ``decode_head`` with a ResNetV1c-18 backbone.

    ResNet-18 stage channels are 64, 128, 256, 512; use ``in_channels=512, in_index=3``.
    """
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=(size, size)),
        backbone=tiny_backbone(),
        decode_head=copy.deepcopy(decode_head),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    if auxiliary_head is not None:
        cfg['auxiliary_head'] = auxiliary_head
    from mmengine.config import ConfigDict
    return ConfigDict(cfg)  # attribute access (test_cfg.mode) as from a config file


def random_batch(num_images: int = 2, size: int = 64, num_classes: int = 4,
                 seed: int = 0) -> dict[str, Any]:
    """A data batch as mmseg's dataloader yields it: uint8 images and SegDataSamples."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        sample = SegDataSample()
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_iterations(decode_head: dict, iters: int = 2, size: int = 64,
                     num_classes: int = 4) -> list[float]:
    """Build an EncoderDecoder around ``decode_head``, run ``iters`` SGD train steps and
    return the total loss of each step. ``decode_head`` must take ``in_channels=512,
    in_index=3`` (the tiny ResNet's last stage)."""
    import nlseg  # noqa: F401  (registers the heads)
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(encoder_decoder_cfg(decode_head, size=size))
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    losses = []
    for i in range(iters):
        log_vars = model.train_step(random_batch(size=size, num_classes=num_classes, seed=i),
                                    optim)
        losses.append(float(log_vars['loss']))
    return losses


ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tool_env(**extra: str) -> dict:
    """Environment for running nlseg's tools in a subprocess as a user does: torch's default
    weights_only=True (no TORCH_FORCE_*WEIGHTS_ONLY* override), the repository importable,
    one OpenMP thread (two processes with two threads each are ~10x slower on 2 cores)."""
    import os
    env = dict(os.environ)
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.pop('TORCH_FORCE_WEIGHTS_ONLY_LOAD', None)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port nothing listens on now (for torchrun's rendezvous in tests)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


DEMO_FCN_CONFIG = 'configs/demo/fcn_r18s3-d8_450iter_synthetic-context-64x64.py'


def make_tiny_demo_data(out_dir: str, num_train: int = 8, num_val: int = 4) -> str:
    """A small copy of the synthetic long-range-context data set."""
    from nlseg.datasets.synthetic_context_generator import generate_synthetic_context
    return generate_synthetic_context(str(out_dir), num_train=num_train, num_val=num_val)


def demo_cfg_options(data_root: str, max_iters: int, checkpoint_interval: int) -> list[str]:
    """--cfg-options that point a demo config at ``data_root`` and shorten its schedule."""
    return [f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={max_iters}',
            f'param_scheduler.0.end={max_iters}',
            f'default_hooks.checkpoint.interval={checkpoint_interval}',
            'default_hooks.logger.interval=1']


def write_runner_checkpoint(tmp_path) -> str:
    """Train the demo FCN for one iteration with mmengine's Runner; return the checkpoint."""
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner

    import nlseg  # noqa: F401
    data_root = make_tiny_demo_data(osp.join(str(tmp_path), 'data'))
    cfg = Config.fromfile(osp.join(ROOT, DEMO_FCN_CONFIG))
    action = DictAction(option_strings=[], dest='x')
    ns = type('NS', (), {})()
    action(None, ns, demo_cfg_options(data_root, 1, 1))
    cfg.merge_from_dict(ns.x)
    cfg.work_dir = osp.join(str(tmp_path), 'work')
    Runner.from_cfg(cfg).train()
    return osp.join(cfg.work_dir, 'iter_1.pth')


def folder_digest(folder: str) -> str:
    """sha256 over the relative paths and bytes of every file below ``folder`` (sorted)."""
    import hashlib
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = osp.join(root, name)
            h.update(osp.relpath(path, folder).encode())
            with open(path, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def one_thread_fixture():
    """An autouse fixture body for modules of tiny problems: intra-op threads only add
    overhead there (and contend on a loaded machine). Use as
    ``one_thread = pytest.fixture(autouse=True)(one_thread_fixture)``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: environment variable naming the folder that holds the published real data sets
#: (``wbc-dataset2/``, ``camvid-segnet/``, docs/datasets.md); tests marked ``real_data``
#: are skipped without it
REAL_DATA_ENV = 'NLSEG_REAL_DATA'


def real_data_dir(name: str) -> str:
    """``$NLSEG_REAL_DATA/<name>``, or skip the test saying how to enable it."""
    import pytest
    root = os.environ.get(REAL_DATA_ENV)
    if not root:
        pytest.skip(f'real data: set {REAL_DATA_ENV} to the folder holding {name}/ '
                    f'(docs/datasets.md) to run this test')
    path = osp.join(root, name)
    if not osp.isdir(path):
        pytest.skip(f'real data: {path} is not a folder ({REAL_DATA_ENV}={root})')
    return path


def read_rgb(path: str) -> torch.Tensor:
    """An image file as a (1, 3, H, W) float32 tensor of RGB colours in [0, 1]."""
    import mmcv
    img = mmcv.imread(path, channel_order='rgb')
    return torch.from_numpy(img.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def nlseg_demo_configs() -> list[str]:
    """The key-task demo configs of nlseg's heads, one per head (absolute paths, sorted): not
    the anchor rows (:data:`nlseg.demo.tasks.ANCHORS`' values): mmseg's own heads
    (``mmseg-*``; LightHamHead's evaluation is random by design) and the authors' forms
    (``*-authors``: the same blocks as ``snl``, ``gsnl`` and ``ns`` with other flags, tested in
    tests/test_models/test_blocks)."""
    from nlseg.demo.tasks import ANCHORS, config_slug, task_configs
    return [p for p in task_configs('context') if config_slug(p) not in set(ANCHORS.values())]


def sync_bn_to_bn(obj):
    """A copy of a config dict (or list) with every ``type='SyncBN'`` replaced by ``'BN'``
    (SyncBN needs a process group; the configs' models are built on one CPU process)."""
    if isinstance(obj, dict):
        return {k: ('BN' if k == 'type' and v == 'SyncBN' else sync_bn_to_bn(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(sync_bn_to_bn(v) for v in obj)
    return obj


def cpu_model_cfg(model: dict) -> dict:
    """A config's model dict to build on one CPU process without downloads: SyncBN replaced by
    BN everywhere, no pretrained weights."""
    import copy
    model = sync_bn_to_bn(copy.deepcopy(model))
    model['pretrained'] = None
    model['backbone']['init_cfg'] = None
    return model


def conv1x1(x, module):
    """A 1x1 convolution with the weights of an nn.Conv2d or a ConvModule (no norm)."""
    import torch.nn.functional as F
    conv = getattr(module, 'conv', module)
    return F.conv2d(x, conv.weight, conv.bias)


def flat(x):
    """(B, C, H, W) -> (B, N, C) tokens."""
    return x.flatten(2).transpose(1, 2)


def unflat(t, like):
    """(B, N, C) tokens -> a (B, C, H, W) map with ``like``'s H and W."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *like.shape[2:])
