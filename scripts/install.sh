#!/usr/bin/env bash
# make install: create .venv in the repository root and install nlseg's stack into it.
# Idempotent: on a ready .venv (stamp matches and the stack imports) it returns in seconds.
#   PYTHON      interpreter that creates the venv (default: python3)
#   TORCH_SPEC  pip requirement for torch, used only when torch is not importable in .venv
#               (default torch==2.13.0; e.g. TORCH_SPEC='torch==2.5.1' --index-url ... for CUDA)
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
VENV=.venv
PY=$VENV/bin/python
STAMP=$VENV/.nlseg-install-stamp
MMCV_VERSION=2.1.0

step() { CURRENT_STEP="$1"; echo "==> [make install] $1"; }
fail() { echo "make install: FAILED at step '$CURRENT_STEP'${1:+: $1}" >&2; exit 1; }

stamp_value() {
  # What a ready install depends on: the package metadata and the requested torch.
  cat pyproject.toml scripts/install.sh | sha256sum | cut -d' ' -f1
}

step "check the Python interpreter ($PYTHON)"
command -v "$PYTHON" >/dev/null 2>&1 || fail "'$PYTHON' not found; set PYTHON=/path/to/python3.9+"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' 2>/dev/null \
  || fail "nlseg needs Python >= 3.9; '$PYTHON' is $("$PYTHON" --version 2>&1)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || fail "'$PYTHON' has no venv/ensurepip module (Debian: apt-get install python3-venv)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ] \
   && "$PY" -c 'import pkg_resources, torch, mmcv, mmcv.ops, mmengine, mmseg, nlseg' >/dev/null 2>&1; then
  echo "==> [make install] .venv is ready (nothing to do)"
  exit 0
fi

step "create the virtual environment $VENV"
if [ ! -x "$PY" ]; then
  "$PYTHON" -m venv "$VENV" || fail
fi
PIP="$PY -m pip --disable-pip-version-check"

step "install torch ($TORCH_SPEC) unless importable"
if "$PY" -c 'import torch' >/dev/null 2>&1; then
  echo "    torch $("$PY" -c 'import torch; print(torch.__version__)') already importable"
else
  # shellcheck disable=SC2086
  $PIP install $TORCH_SPEC || fail "pip install $TORCH_SPEC"
fi

step "install build tools (setuptools<70, wheel)"
# setuptools<70 stays installed: mmcv's build and mmengine (pkg_resources) need it.
$PIP install "setuptools<70" wheel || fail

step "build mmcv $MMCV_VERSION from source with ops (no build isolation)"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; then
  echo "    mmcv $MMCV_VERSION with ops already installed"
else
  if command -v nvcc >/dev/null 2>&1 && "$PY" -c 'import torch; assert torch.version.cuda and torch.cuda.is_available()' >/dev/null 2>&1; then
    echo "    GPU and nvcc found: building CUDA ops"; export FORCE_CUDA=1
  else
    echo "    no usable GPU/nvcc with a CUDA torch: building CPU ops (about 6 minutes on 2 cores; pip caches the wheel)"
    export FORCE_CUDA=0
  fi
  MMCV_WITH_OPS=1 $PIP install --no-build-isolation "mmcv==$MMCV_VERSION" \
    || fail "mmcv $MMCV_VERSION build (needs gcc, the Python headers and torch in $VENV)"
  "$PY" -c 'import mmcv.ops' || fail "mmcv was installed without its compiled ops"
fi

step "install mmengine and mmsegmentation"
$PIP install "mmengine>=0.10,<1.0" "mmsegmentation>=1.2,<1.3" || fail

step "install nlseg in editable mode with its test and deploy extras"
# tests = pytest, hypothesis, ruff, and openmim with opendatalab<0.0.10 (`mim search/train/test
#   nlseg` on the wheel; the newer opendatalab requires openxlab, which pins setuptools~=60.2.0)
# deploy = onnx, onnxruntime, onnxscript (none of them requires torch, so torch stays as is)
$PIP install --no-build-isolation -e ".[tests,deploy]" || fail
# torch's metadata asks for setuptools>=77, which pip honours while resolving nlseg's deps;
# mmengine needs pkg_resources (gone from new setuptools): put setuptools<70 back.
$PIP install "setuptools<70" || fail

step "check the stack imports"
"$PY" -c 'import pkg_resources, torch, mmcv, mmcv.ops, mmengine, mmseg, nlseg; print("    torch", torch.__version__, "| mmcv", mmcv.__version__, "| mmengine", mmengine.__version__, "| mmseg", mmseg.__version__, "| nlseg", nlseg.__version__)' \
  || fail "import check"
stamp_value > "$STAMP"
echo "==> [make install] done"
