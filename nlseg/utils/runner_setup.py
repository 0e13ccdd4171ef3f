"""What nlseg's tools add around mmengine's Runner: CPU distributed training, a clear
``--amp`` error without CUDA, and readable errors for configs that name unknown modules or
missing data, and for checkpoints that cannot be loaded."""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

import torch


def prepare_distributed(cfg) -> None:
    """Make ``--launcher pytorch`` work on CPU-only machines (gloo).

    mmengine 0.10.7 calls ``torch.cuda.set_device`` in ``init_dist`` and wraps the model in
    DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA. When CUDA is unavailable we
    initialise the default process group with gloo ourselves (the Runner then skips
    ``init_dist``) and wrap the model in :class:`~nlseg.engine.CPUDistributedDataParallel`
    (``device_ids=None``; SyncBN layers synchronise over gloo, where torch's SyncBatchNorm
    refuses CPU tensors). With CUDA nothing changes.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist

    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    backend = dist_cfg.get('backend', 'gloo')
    if backend == 'nccl':
        backend = 'gloo'  # nccl needs CUDA; gloo is PyTorch's CPU backend
    dist_cfg['backend'] = backend
    if cfg.launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {cfg.launcher} without CUDA is not supported by nlseg\'s tools; use '
            '--launcher pytorch (tools/dist_train.sh) for CPU training on gloo')
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        # same as the Runner's default wrapper (which has broadcast_buffers=False), plus
        # device_ids=None and SyncBN layers that synchronise over gloo
        wrapper['type'] = 'CPUDistributedDataParallel'
        wrapper.setdefault('broadcast_buffers', False)
        wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def finish_distributed() -> None:
    """Destroy the default process group once the run is over (every rank, after a
    barrier). Left to interpreter shutdown, gloo's threads can be torn down while still
    joinable and abort a rank ("terminate called without an active exception", exit -6)
    after a run that otherwise succeeded."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def check_amp_available() -> None:
    """``--amp`` means fp16 with a dynamic loss scale (mmengine's AmpOptimWrapper), which
    needs CUDA. Fail early with what to do instead."""
    if not torch.cuda.is_available():
        raise SystemExit(
            'error: --amp needs a CUDA GPU: mmengine\'s AmpOptimWrapper (fp16, dynamic loss '
            'scale) refuses to run without one, and torch.cuda.is_available() is False here. '
            'On a CPU, train in bfloat16 instead (no loss scale needed): '
            '`--cfg-options optim_wrapper.type=AutocastOptimWrapper` '
            '(docs/reliability.md), or train in float32 without --amp.')


_REGISTRY_KEY_ERROR = re.compile(r'(\S+) is not in the (\S+) registry')


def explain_build_error(exc: BaseException, cfg) -> str | None:
    """A readable message for the errors a user's config typically hits while the Runner
    builds it, or None when ``exc`` is none of those."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    match = _REGISTRY_KEY_ERROR.search(text)
    if isinstance(exc, KeyError) and match:
        import sys
        imports = (cfg.get('custom_imports') or {}).get('imports', [])
        nlseg_imported = 'nlseg' in sys.modules
        return (f'{match.group(1)} is not registered in the {match.group(2)} registry '
                f'(the one searched with default_scope={cfg.get("default_scope")!r}). '
                f'nlseg imported: {"yes" if nlseg_imported else "no"}; the config\'s '
                f'custom_imports: {imports}. Check the type name for typos; nlseg modules '
                'need `custom_imports = dict(imports=[\'nlseg\'], allow_failed_imports=False)` '
                'in the config (or `import nlseg`).')
    if isinstance(exc, FileNotFoundError):
        path = getattr(exc, 'filename', None) or text
        hint = ''
        if 'synthetic_context' in str(path) or 'synthetic_context' in text:
            hint = ' Make the demo data with `python tools/make_demo_data.py` (or `make demo`).'
        return f'data not found: {path}. Check data_root in the config.{hint}'
    return None


def set_local_rank_env(local_rank: int) -> None:
    """mmseg's tools put --local-rank into LOCAL_RANK when the launcher did not."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


@contextmanager
def readable_errors(cfg) -> Iterator[None]:
    """Turn the errors a user typically hits while the Runner builds a config and loads a
    checkpoint into ``SystemExit('error: ...')`` with a readable message (exit status 1);
    anything else propagates unchanged."""
    from .checkpoint import CheckpointLoadError
    try:
        yield
    except CheckpointLoadError as exc:
        raise SystemExit(f'error: {exc}') from exc
    except (KeyError, FileNotFoundError) as exc:
        message = explain_build_error(exc, cfg)
        if message is None:
            raise
        raise SystemExit(f'error: {message}') from exc
