#!/usr/bin/env bash
# Idempotent set-up of the development environment in ./.venv.
#
#   1. create .venv (Python 3.11)
#   2. torch + torchvision (pinned, requirements/pinned.txt)
#   3. build tools for mmcv (requirements/build.txt)
#   4. mmcv 2.1.0 with compiled ops: built ONCE into a wheel directory outside
#      the repo (MMSSL_WHEEL_DIR, default ~/.cache/mmssl_ext/wheels/torch<ver>)
#      and installed from there afterwards
#   5. the rest of the stack + test tools, then this package in editable mode
#   6. a smoke import of every layer of the stack
#
# A stamp in .venv records the hash of the requirement files; a second run
# with unchanged files only verifies the imports (a few seconds).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${MMSSL_VENV:-$ROOT/.venv}"
PY_BOOT="${PYTHON:-python3}"
STEP="(none)"
T0=$(date +%s)

say() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { say "FAILED at step: $STEP"; say "$*"; exit 1; }
trap 'fail "a command exited non-zero (see the output above)"' ERR

STEP="check python"
"$PY_BOOT" - <<'PYEOF' || fail "Python 3.10-3.12 is required (found $("$PY_BOOT" --version 2>&1)); set PYTHON=/path/to/python3.11"
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
PYEOF

STAMP_SRC="$(cat requirements/pinned.txt requirements/build.txt requirements/tests.txt requirements/optional.txt setup.py tools/setup/setup.sh | sha256sum | cut -c1-16)"
STAMP_FILE="$VENV/.mmssl_setup_stamp"

verify() {
  "$VENV/bin/python" - <<'PYEOF'
import importlib, sys
mods = ['torch', 'torchvision', 'mmengine', 'mmcv', 'mmcv.ops', 'mmpretrain.models',
        'mmdet.models', 'faiss', 'mmssl_ext']
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # noqa
        print(f'import {m} failed: {type(e).__name__}: {e}')
        sys.exit(1)
import torch, mmcv, mmpretrain, mmdet, mmengine, faiss
print(f'torch {torch.__version__} | mmengine {mmengine.__version__} | mmcv {mmcv.__version__} (ops) '
      f'| mmpretrain {mmpretrain.__version__} | mmdet {mmdet.__version__} | faiss {faiss.__version__}')
PYEOF
}

if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP_SRC" ]]; then
  STEP="verify existing environment"
  if verify; then say "environment up to date ($VENV)"; exit 0; fi
  say "existing environment is broken; reinstalling"
fi

STEP="create virtual environment"
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV"
  "$PY_BOOT" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_PROGRESS_BAR=off
# pip, with the local index's "Location ... is ignored" noise filtered out;
# keeps pip's exit status.
pipq() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

STEP="install torch + torchvision"
TORCH_REQ=$(grep -E '^torch(vision)?==' requirements/pinned.txt | tr '\n' ' ')
say "installing $TORCH_REQ(a few minutes the first time)"
pipq install -q $TORCH_REQ -r requirements/build.txt
"$VENV/bin/python" -c "import torch, torchvision" || fail "torch/torchvision do not import"

STEP="mmcv with compiled ops"
MMCV_VER=2.1.0
TORCH_VER=$("$VENV/bin/python" -c "import torch; print(torch.__version__.split('+')[0])")
WHEEL_DIR="${MMSSL_WHEEL_DIR:-$HOME/.cache/mmssl_ext/wheels/torch$TORCH_VER}"
mkdir -p "$WHEEL_DIR"
if "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VER'" 2>/dev/null; then
  say "mmcv $MMCV_VER with ops already installed"
else
  WHEEL=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VER-*.whl 2>/dev/null | head -1 || true)
  if [[ -z "$WHEEL" ]]; then
    say "building mmcv $MMCV_VER with ops into $WHEEL_DIR (about 16 minutes on 2 cores, once)"
    # torch >= 2.10 headers need C++20; MMCV's setup passes -std=c++14/17, the
    # wrapper appends -std=c++20 (last flag wins). Build isolation would pull a
    # setuptools without pkg_resources, so build in the venv.
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" CXX="$ROOT/tools/setup/cxx20.sh" \
      pipq wheel --no-build-isolation --no-deps "mmcv==$MMCV_VER" -w "$WHEEL_DIR" > "$WHEEL_DIR/build.log" 2>&1 \
      || fail "mmcv wheel build failed; log: $WHEEL_DIR/build.log"
    WHEEL=$(ls "$WHEEL_DIR"/mmcv-$MMCV_VER-*.whl 2>/dev/null | head -1 || true)
    [[ -n "$WHEEL" ]] || fail "mmcv wheel build failed (rerun: MMCV_WITH_OPS=1 CXX=tools/setup/cxx20.sh pip wheel --no-build-isolation mmcv==$MMCV_VER)"
  else
    say "reusing cached mmcv wheel $(basename "$WHEEL")"
  fi
  pipq install -q --no-deps "$WHEEL"
fi

STEP="install the OpenMMLab stack and test tools"
say "installing mmengine, mmpretrain, mmdet, faiss, test tools"
pipq install -q -r requirements/pinned.txt -r requirements/tests.txt -r requirements/optional.txt

STEP="install mmssl_ext (editable)"
pipq install -q --no-deps --no-build-isolation -e .

STEP="verify imports"
verify || fail "the environment does not import (see above)"
echo "$STAMP_SRC" > "$STAMP_FILE"
say "done: $(du -sh "$VENV" | cut -f1) in $VENV"
