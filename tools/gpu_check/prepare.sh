#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (device-wheels.txt) into
# tools/gpu_check/wheels/ (git-ignored) for Python 3.12 / manylinux x86_64,
# and fail if they and the working tree would exceed the 64 MiB that travel
# to the device in one call.
#
#   bash tools/gpu_check/prepare.sh            # PYTHON=python3 by default
#
# Any Python with pip works here: the wheels are pure Python (py3-none-any)
# and pip only downloads (--no-deps, --only-binary, target Python 3.12).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${PYTHON:-python3}"
LIST="$HERE/device-wheels.txt"
DEST="$HERE/wheels"
LIMIT=$((64 * 1024 * 1024))   # what may travel per call: tree + carried
MARGIN=$((8 * 1024 * 1024))   # left for the tree to grow and $OUT scratch

die() { echo "prepare.sh: $*" >&2; exit 1; }

mapfile -t MAIN < <(grep -v '^\s*#' "$LIST" | grep -v '^\s*$' | grep -v '^fallback:' | awk '{print $1}')
mapfile -t FALLBACK < <(grep '^fallback:' "$LIST" | awk '{print $2}')
[[ ${#MAIN[@]} -gt 0 ]] || die "no wheels listed in $LIST"
for spec in "${MAIN[@]}" "${FALLBACK[@]}"; do
  [[ "$spec" == *==* ]] || die "unpinned entry '$spec' in $LIST (write name==version)"
done

download() {  # dest specs...
  local dest="$1"; shift
  mkdir -p "$dest"
  rm -f "$dest"/*.whl
  "$PY" -m pip download -q --disable-pip-version-check --no-deps \
    --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest" "$@" \
    || die "pip download failed for: $*"
}
download "$DEST" "${MAIN[@]}"
download "$DEST/fallback" "${FALLBACK[@]}"

# exactly one wheel per entry, all pure Python
n_whl=$(ls "$DEST"/*.whl | wc -l)
[[ "$n_whl" -eq ${#MAIN[@]} ]] || die "expected ${#MAIN[@]} wheels, found $n_whl in $DEST"
for w in "$DEST"/*.whl "$DEST"/fallback/*.whl; do
  [[ "$w" == *-none-any.whl ]] || die "$(basename "$w") is not a pure-Python wheel"
done

size_of() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
wheels=$(size_of "$DEST")
tree=$(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((wheels + tree))
mib() { awk -v b="$1" 'BEGIN {printf "%.2f MiB", b / 1048576}'; }
echo "wheels: $(ls "$DEST"/*.whl "$DEST"/fallback/*.whl | wc -l) files, $(mib "$wheels") in $DEST"
ls -l "$DEST"/*.whl "$DEST"/fallback/*.whl | awk '{printf "  %10d  %s\n", $5, $NF}' | sed "s|$DEST/||"
echo "working tree that travels (tracked + untracked, not ignored): $(mib "$tree")"
echo "total: $(mib "$total") of the $(mib "$LIMIT") carry limit (margin kept: $(mib "$MARGIN"))"
if (( total > LIMIT - MARGIN )); then
  die "too large to carry: $(mib "$total") > $(mib $((LIMIT - MARGIN))) (limit minus margin); drop wheels or files"
fi
echo "ok: run the device command with carry=[\"tools/gpu_check/wheels\"] (see tools/gpu_check/README.md)"
