"""Code shared by the model converters: checkpoint loading and saving with their wrappers,
the key-mapping bookkeeping, the conversion report and the command line.

Each source format has its module beside this one (``arnlb``, ``snl``, ``lightham``,
``seg_mm_hamhead``, ``hamburger_v1``) and its command line in ``tools/model_converters/``
(``python tools/model_converters/arnlb2nlseg.py SRC DST``), a thin script over
:func:`run_converter`.

Every key of a source state_dict ends up in exactly one of these groups, all listed in the
:class:`ConversionReport`:

* mapped: a key of a converted module (a decode head or a block, wherever it sits in the
  model: ``decode_head.``, ``module.decode_head.`` or no prefix at all), renamed and, where
  the layouts differ, transformed (a 1x1 kernel embedded into a 3x3 one, a sign flipped);
* kept: a key outside every converted module (backbone, auxiliary head...), copied unchanged;
* unknown: a key inside a converted module that the converter has no rule for. That is an
  error (the source is not the layout the converter knows) unless ``drop_unknown`` is set, in
  which case it is dropped and listed as dropped.

Target keys that have no source counterpart (a zero bias where the source conv has none) are
filled and listed with the reason. A source that lacks a key of the expected layout raises
:class:`ConversionError` naming every missing key.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import pickle
import re
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import Tensor

from ..utils.checkpoint import allow_mmengine_checkpoint_globals
from .cli import report_error
from .errors import ConversionError

__all__ = ['ConversionReport', 'StateDictConversion', 'describe_keys',
           'embed_kernel', 'load_checkpoint', 'split_state_dict', 'save_checkpoint',
           'run_converter', 'map_fcn_head', 'BN_KEYS']
#: state_dict keys of a BatchNorm layer (``num_batches_tracked`` may be missing in old files).
BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def describe_keys(keys: Sequence[str], limit: int = 12) -> str:
    """``'a, b, c'`` or ``'a, b, ... (40 in all)'`` for messages."""
    keys = list(keys)
    shown = ', '.join(keys[:limit])
    return shown if len(keys) <= limit else f'{shown}, ... ({len(keys)} in all)'


def embed_kernel(weight: Tensor, size: int = 3) -> Tensor:
    """A (O, I, 1, 1) conv kernel as the centre tap of a zero (O, I, size, size) kernel.

    With padding ``size // 2`` (stride 1, no dilation) the bigger conv computes exactly what
    the 1x1 conv does: every other tap is zero, including those over the zero padding.
    """
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (1, 1):
        raise ConversionError(f'expected a 1x1 conv kernel (O, I, 1, 1), got shape '
                              f'{tuple(weight.shape)}')
    if size < 1 or size % 2 == 0:
        raise ValueError(f'size must be a positive odd integer, got {size}')
    out = weight.new_zeros(*weight.shape[:2], size, size)
    out[:, :, size // 2, size // 2] = weight[:, :, 0, 0]
    return out


@dataclass
class ConversionReport:
    """What a conversion did, key by key (see the module docstring)."""

    source: str = ''
    target: str = ''
    renamed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)
    filled: list[tuple[str, str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mapped: int = 0

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def kept_groups(self) -> dict[str, int]:
        """Kept keys counted by their first name component (``backbone``: 320, ...)."""
        groups: dict[str, int] = {}
        for key in self.kept:
            top = key.split('.', 1)[0]
            groups[top] = groups.get(top, 0) + 1
        return groups

    def summary(self) -> str:
        lines = [f'{self.source} -> {self.target}',
                 f'  {self.mapped} keys mapped ({len(self.renamed)} renamed, '
                 f'{len(self.changed)} changed), {len(self.filled)} filled, '
                 f'{len(self.kept)} kept unchanged outside the converted modules, '
                 f'{len(self.dropped)} dropped']
        if self.kept:
            lines.append('  kept: ' + ', '.join(f'{top}.* ({n})'
                                                 for top, n in self.kept_groups().items()))
        lines += [f'  renamed: {src} -> {dst}' for src, dst in self.renamed]
        lines += [f'  changed: {key}: {what}' for key, what in self.changed]
        lines += [f'  filled: {key}: {why}' for key, why in self.filled]
        lines += [f'  dropped (unknown to the converter): {key}' for key in self.dropped]
        lines += [f'  note: {text}' for text in self.notes]
        return '\n'.join(lines)


class StateDictConversion:
    """Bookkeeping of one conversion: the converter maps keys with :meth:`map`,
    :meth:`map_tree` and :meth:`fill`, declares with :meth:`scope` the prefixes of the
    modules it converts, and :meth:`result` builds the new state_dict (in the order of the
    source keys), raising :class:`ConversionError` for missing or unknown keys.

    Args:
        state_dict: the source, a mapping of str keys to tensors.
        source, target: names of the two layouts, for messages and the report.
        report: filled in place when given (a new one otherwise, see :attr:`report`).
    """

    def __init__(self, state_dict: Mapping[str, Tensor], source: str, target: str,
                 report: Optional[ConversionReport] = None) -> None:
        if not isinstance(state_dict, Mapping):
            raise TypeError(f'state_dict must be a mapping of str keys to tensors, got '
                            f'{type(state_dict).__name__}')
        bad = [repr(k) for k, v in state_dict.items()
               if not isinstance(k, str) or not isinstance(v, Tensor)]
        if bad:
            raise TypeError(f'state_dict must map str keys to tensors; these entries do not: '
                            f'{describe_keys(bad)}')
        self.state_dict = state_dict
        self.source = source
        self.target = target
        self.report = report if report is not None else ConversionReport()
        self.report.source, self.report.target = source, target
        self._outputs: dict[str, list[tuple[str, Tensor]]] = {}
        self._fills: dict[Optional[str], list[tuple[str, Tensor]]] = {}
        self._missing: list[str] = []
        self._scopes: list[str] = []

    # -- reading ---------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.state_dict

    def tensor(self, key: str) -> Optional[Tensor]:
        """The source tensor of ``key`` (recorded as missing when absent)."""
        if key not in self.state_dict:
            self.require(key)
            return None
        return self.state_dict[key]

    def keys_under(self, prefix: str) -> list[str]:
        return [k for k in self.state_dict if k.startswith(prefix)]

    def find_prefixes(self, suffix: str) -> list[str]:
        """Every prefix ``p`` (``''`` or ending with ``'.'``) such that ``p + suffix`` is a
        source key: where the modules holding ``suffix`` sit in the model."""
        found = []
        for key in self.state_dict:
            if key == suffix:
                found.append('')
            elif key.endswith('.' + suffix):
                found.append(key[:-len(suffix)])
        return found

    def require(self, key: str) -> None:
        """Record ``key`` as a missing key of the expected layout."""
        if key not in self._missing:
            self._missing.append(key)

    # -- mapping ---------------------------------------------------------------------------
    def scope(self, prefix: str) -> None:
        """Declare ``prefix`` a converted module: all its keys must be mapped."""
        if prefix not in self._scopes:
            self._scopes.append(prefix)

    def map(self, src: str, dst: str, transform: Optional[Callable[[Tensor], Tensor]] = None,
            what: Optional[str] = None, required: bool = True) -> bool:
        """Map source key ``src`` to target key ``dst``, through ``transform`` (described by
        ``what`` in the report) when given. Returns whether ``src`` exists; a missing
        ``required`` key is recorded (and raised by :meth:`result`)."""
        if src not in self.state_dict:
            if required:
                self.require(src)
            return False
        if src in self._outputs:
            raise RuntimeError(f'converter bug: {src} mapped twice')
        value = self.state_dict[src]
        if transform is not None:
            value = transform(value)
            self.report.changed.append((dst, what or 'transformed'))
        self._outputs[src] = [(dst, value)]
        self.report.mapped += 1
        if src != dst:
            self.report.renamed.append((src, dst))
        return True

    def map_tree(self, src_prefix: str, dst_prefix: str,
                 required: Sequence[str] = ()) -> list[str]:
        """Map every source key under ``src_prefix`` to the same key under ``dst_prefix``;
        the ``required`` keys (relative to the prefix) must be present. Returns the relative
        keys mapped."""
        for rel in required:
            if src_prefix + rel not in self.state_dict:
                self.require(src_prefix + rel)
        mapped = []
        for key in self.keys_under(src_prefix):
            if key in self._outputs:
                continue
            rel = key[len(src_prefix):]
            self.map(key, dst_prefix + rel)
            mapped.append(rel)
        return mapped

    def map_batch_norm(self, src_prefix: str, dst_prefix: str) -> None:
        """A BatchNorm's keys (:data:`BN_KEYS`); a missing ``num_batches_tracked`` (files
        written before torch 0.4.1) is filled with 0, which only the cumulative-average
        momentum (``momentum=None``) reads."""
        for name in BN_KEYS[:4]:
            self.map(src_prefix + name, dst_prefix + name)
        if not self.map(src_prefix + 'num_batches_tracked',
                        dst_prefix + 'num_batches_tracked', required=False):
            self.fill(dst_prefix + 'num_batches_tracked', torch.tensor(0, dtype=torch.long),
                      'absent in the source BatchNorm (old file): 0',
                      after=src_prefix + 'running_var')

    def fill(self, dst: str, value: Tensor, why: str, after: Optional[str] = None) -> None:
        """Create target key ``dst`` with ``value`` (no source counterpart), placed after the
        source key ``after`` in the output order."""
        self._fills.setdefault(after, []).append((dst, value))
        self.report.filled.append((dst, why))

    # -- result ----------------------------------------------------------------------------
    def _in_scope(self, key: str) -> bool:
        return any(key.startswith(prefix) for prefix in self._scopes)

    def result(self, drop_unknown: bool = False) -> 'OrderedDict[str, Tensor]':
        """The converted state_dict. Raises :class:`ConversionError` naming the missing keys
        of the expected layout, or the unknown keys inside the converted modules unless
        ``drop_unknown`` (then they are dropped and listed in the report)."""
        if self._missing:
            raise ConversionError(
                f'the source does not have the layout of the {self.source}: missing '
                f'{len(self._missing)} key(s): {describe_keys(self._missing)}')
        unknown = [k for k in self.state_dict if k not in self._outputs and self._in_scope(k)]
        if unknown and not drop_unknown:
            raise ConversionError(
                f'{len(unknown)} key(s) inside the converted {self.source} modules have no '
                f'counterpart in {self.target}: {describe_keys(unknown)}. The source is '
                'probably another variant of the layout; pass --drop-unknown '
                '(drop_unknown=True) to drop them (they are listed in the report)')
        out: OrderedDict[str, Tensor] = OrderedDict()

        def put(key: str, value: Tensor) -> None:
            if key in out:
                raise ConversionError(f'two source keys map to the target key {key}')
            out[key] = value

        for dst, value in self._fills.get(None, []):
            put(dst, value)
        for key, value in self.state_dict.items():
            if key in self._outputs:
                for dst, mapped in self._outputs[key]:
                    put(dst, mapped)
            elif key in unknown:
                self.report.dropped.append(key)
            else:
                put(key, value)
                self.report.kept.append(key)
            for dst, filled in self._fills.get(key, []):
                put(dst, filled)
        return out


def map_fcn_head(conv: StateDictConversion, head: str) -> None:
    """Map, unchanged, the keys of mmseg's ``FCNHead(num_convs=2)`` part of an NLHead-style
    head under prefix ``head``: ``convs.0``, ``convs.1`` (required), ``conv_cat`` (present
    when ``concat_input``) and ``conv_seg`` (required)."""
    conv.map_tree(f'{head}convs.', f'{head}convs.', required=('0.conv.weight', '1.conv.weight'))
    conv.map_tree(f'{head}conv_cat.', f'{head}conv_cat.')
    conv.map_tree(f'{head}conv_seg.', f'{head}conv_seg.', required=('weight',))


# -- files ----------------------------------------------------------------------------------
_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def load_checkpoint(path: str, unsafe: bool = False) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)``.

    A file that holds pickled globals beyond tensors and plain containers is retried once
    with the globals of mmengine/mmseg checkpoints allowlisted (as nlseg's tools do); if it
    is still refused, :class:`ConversionError` names the global and says how to proceed:
    ``unsafe=True`` (``--unsafe-load``) loads with ``weights_only=False``, which can run code
    from the file, so only for a file you trust. A missing, truncated or corrupt file also
    raises :class:`ConversionError`.
    """
    if not osp.isfile(path):
        raise ConversionError(f'source checkpoint {path!r} does not exist or is not a file')
    if unsafe:
        return torch.load(path, map_location='cpu', weights_only=False)
    try:
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError:
            allow_mmengine_checkpoint_globals()
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        match = _GLOBAL.search(str(exc))
        what = f'the pickled global {match.group(1)}' if match else 'a pickled global'
        raise ConversionError(
            f'{path} was refused by torch.load(weights_only=True): it holds {what}, beyond '
            'tensors, plain containers and the globals of mmengine checkpoints. If you trust '
            'the file, rerun with --unsafe-load (weights_only=False: unpickling can run code '
            'from the file); the converted file holds tensors only.') from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ''
        raise ConversionError(f'{path} could not be read as a torch checkpoint (truncated or '
                              f'corrupt?): {type(exc).__name__}: {first}') from exc


def split_state_dict(checkpoint: Any) -> tuple[Mapping[str, Tensor], Optional[str]]:
    """``(state_dict, wrapper)``: the ``'state_dict'`` entry (mmengine/mmcv checkpoints) or
    the ``'model'`` entry (plain training scripts) of ``checkpoint``, or the checkpoint
    itself when it is a flat mapping of tensors (``wrapper`` None)."""
    if not isinstance(checkpoint, Mapping):
        raise ConversionError(f'the checkpoint is a {type(checkpoint).__name__}, not a dict '
                              'holding a state_dict')
    for wrapper in ('state_dict', 'model'):
        if isinstance(checkpoint.get(wrapper), Mapping):
            return checkpoint[wrapper], wrapper
    if checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
        return checkpoint, None
    raise ConversionError(
        "the checkpoint has no 'state_dict' or 'model' entry and is not a flat dict of "
        f'tensors; its top-level keys: {describe_keys([str(k) for k in checkpoint])}')


def save_checkpoint(path: str, state_dict: Mapping[str, Tensor], wrapper: Optional[str],
                    meta: Optional[dict] = None) -> None:
    """Write ``state_dict`` under the same ``wrapper`` as the source (``{wrapper:
    state_dict, 'meta': meta}``, or the bare state_dict), atomically (a temporary file
    beside ``path`` renamed into place), creating the folder."""
    path = osp.abspath(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    if wrapper is None:
        obj: Any = OrderedDict(state_dict)
    else:
        obj = {wrapper: OrderedDict(state_dict)}
        if meta is not None:
            obj['meta'] = meta
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}-', dir=osp.dirname(path))
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def run_converter(convert: Callable[..., 'OrderedDict[str, Tensor]'], doc: str,
                  argv: Optional[Sequence[str]] = None,
                  add_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
                  convert_kwargs: Optional[Callable[[argparse.Namespace], dict]] = None
                  ) -> int:
    """The command line of every converter: ``SRC DST [--drop-unknown] [--unsafe-load]``
    plus the converter's own options (``add_arguments``, passed on by ``convert_kwargs``);
    ``doc`` is the script's docstring, whose first paragraph is the ``--help`` description.

    Loads SRC (:func:`load_checkpoint`), takes its state_dict (:func:`split_state_dict`),
    converts it with ``convert(state_dict, report=..., drop_unknown=..., **kwargs)``, prints
    the report and saves DST with the same wrapper (and the source's ``meta`` when the file
    was loaded with weights_only; other entries such as optimizer states, whose parameter
    order no longer matches, are left out and named). Returns the exit status: 0, or 1 after
    printing ``error: ...`` for a :class:`ConversionError`.
    """
    description = ' '.join(doc.strip().split('\n\n')[0].split()).replace('``', '')
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='source checkpoint (.pth)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--drop-unknown', action='store_true',
                        help='drop keys inside the converted modules that the converter does '
                             'not know (listed in the report) instead of stopping')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load SRC with weights_only=False (can run code from the file; '
                             'only for a file you trust)')
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.src, unsafe=args.unsafe_load)
        state_dict, wrapper = split_state_dict(checkpoint)
        report = ConversionReport()
        extra = convert_kwargs(args) if convert_kwargs is not None else {}
        converted = convert(state_dict, report=report, drop_unknown=args.drop_unknown,
                            **extra)
        meta = None
        if wrapper is not None:
            left_out = [str(k) for k in checkpoint if k not in (wrapper, 'meta')]
            if isinstance(checkpoint.get('meta'), dict):
                if args.unsafe_load:
                    left_out.append('meta')
                else:
                    meta = checkpoint['meta']
            if left_out:
                report.note(f'top-level entries not written to DST: {describe_keys(left_out)}')
        save_checkpoint(args.dst, converted, wrapper, meta)
    except ConversionError as exc:
        return report_error(exc)
    print(report.summary())
    print(f'saved {len(converted)} keys to {args.dst}'
          + (f" (under '{wrapper}')" if wrapper else ''))
    return 0
