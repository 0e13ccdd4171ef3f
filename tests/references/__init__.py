"""Re-implementations of other people's code that nlseg is tested against: minimal, with
their key layouts and forwards (crash bugs that do not touch the weights left out, as each
module says). One module per source repository; its docstring names the repository and the
files it re-implements.

* :mod:`.mmseg_nl_head`: mmseg's NLHead forward with the block under any attribute name;
* :mod:`.arnlb`: sunhuichao/ARNLB (``NewNonLocal2d``, ``ARNLHead``);
* :mod:`.snl_iccv2021`: zh460045050/SNL_ICCV2021 (the SNL/gSNL unit and stage, the
  segmentation head);
* :mod:`.enjoy_hamburger`: Gsunshine/Enjoy-Hamburger (``HamburgerV1``, seg_mm ``HamHead``).
"""
