#!/usr/bin/env bash
# The device command of the GPU validation kit. Run from the repository
# root on the GPU machine, with tools/gpu_check/wheels/ there (prepare.sh,
# then carry it):
#
#   bash tools/gpu_check/run_on_device.sh [gpu_check.py options]
#
# Installs the carried wheels into a private folder (no network, no
# dependency resolution), puts it and the repository on PYTHONPATH and runs
# tools/gpu_check/gpu_check.py, which writes gpu_check.json / gpu_check.md
# and this run's log to $OUT (default work_dirs/gpu_check).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY="${PYTHON:-python3}"
OUT="${OUT:-work_dirs/gpu_check}"
SITE="${GPU_CHECK_SITE:-/tmp/gpu_check_site}"
WHEELS=tools/gpu_check/wheels
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
T0=$(date +%s)
{
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || {
    echo "run_on_device.sh: no wheels in $WHEELS: run tools/gpu_check/prepare.sh here and carry $WHEELS"
    exit 3; }
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps \
    --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
    || { echo "run_on_device.sh: pip install of the carried wheels failed"; exit 3; }
  if ! "$PY" -c 'import pkg_resources' >/dev/null 2>&1; then
    echo "no pkg_resources on this machine: installing the carried setuptools"
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps \
      --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$WHEELS"/fallback/*.whl || exit 3
  fi
  export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONUNBUFFERED=1 PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
  echo "wheels installed in $(( $(date +%s) - T0 )) s into $SITE"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  "$PY" tools/gpu_check/gpu_check.py --out "$OUT" "$@"
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
