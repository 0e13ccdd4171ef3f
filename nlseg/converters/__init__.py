"""nlseg's converters: published checkpoints and data sets -> nlseg's layouts.

Library code, importable; the command lines over it are the scripts of
``tools/model_converters/`` and ``tools/dataset_converters/`` (docs/model_converters.md,
docs/datasets.md).

* :mod:`.errors`: :class:`ConversionError`, the one error of every converter (a
  ``ValueError``); :mod:`.cli`: how a command line reports it (``error: ...``, exit 1).
* :mod:`.state_dict`: what the model converters share (checkpoint files and wrappers, the
  key-mapping bookkeeping :class:`StateDictConversion`, :class:`ConversionReport`, the
  command line :func:`run_converter`).
* One module per source of published weights, each a pure function ``state_dict ->
  state_dict``: :mod:`.arnlb` (ARNLB authors' ARNLHead), :mod:`.snl` (SNL authors' head),
  :mod:`.lightham` (mmseg's LightHamHead), :mod:`.seg_mm_hamhead` (Enjoy-Hamburger's seg_mm
  HamHead), :mod:`.hamburger_v1` (Enjoy-Hamburger's HamburgerV1 block).
* :mod:`.datasets`: the CamVid and WBC data set converters and their helpers.
"""
from .arnlb import convert_arnlb
from .datasets import convert_camvid, convert_wbc
from .errors import ConversionError
from .hamburger_v1 import convert_hamburger_v1
from .lightham import convert_ham_head, convert_lightham
from .seg_mm_hamhead import convert_seg_mm_hamhead
from .snl import convert_snl
from .state_dict import (BN_KEYS, ConversionReport, StateDictConversion, describe_keys,
                         embed_kernel, load_checkpoint, map_fcn_head, run_converter,
                         save_checkpoint, split_state_dict)

__all__ = ['ConversionError', 'ConversionReport', 'StateDictConversion', 'BN_KEYS',
           'describe_keys', 'embed_kernel', 'load_checkpoint', 'map_fcn_head',
           'run_converter', 'save_checkpoint', 'split_state_dict', 'convert_arnlb',
           'convert_snl', 'convert_lightham', 'convert_ham_head', 'convert_seg_mm_hamhead',
           'convert_hamburger_v1', 'convert_camvid', 'convert_wbc']
