#!/usr/bin/env bash
# Segmentation transfer of a self-supervised checkpoint (FCN R50-D8 on
# PASCAL VOC12aug, MMSelfSup's protocol; configs/benchmarks/mmsegmentation/):
#
#   bash tools/benchmarks/mmsegmentation/dist_train.sh CONFIG CKPT GPUS [train.py args]
#
# Needs MMSegmentation, which `make setup` does not install:
#   pip install mmsegmentation==1.2.2 ftfy regex prettytable
# (checked first). CKPT: a pre-training checkpoint or an already extracted
# backbone file (path or URL), converted (idempotently) into
# $WORK_DIR/backbone.pth by tools/model_converters/extract_backbone_weights.py
# and verified against a ResNet of --depth (default 50; the segmentation
# config's plain pytorch-style ResNet has the same keys) before any
# training starts. Env: WORK_DIR (default work_dirs/<config name>), SOURCE
# (online|momentum), DEPTH, CONVERT_ARGS (extra converter options, e.g.
# --allow-pickle) and tools/dist_train.sh's NNODES, NODE_RANK, PORT,
# MASTER_ADDR.
set -euo pipefail
CFG=$1
CKPT=$2
GPUS=$3
DIR="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$( [ -x "$DIR/../.venv/bin/python" ] && echo "$DIR/../.venv/bin/python" || echo python)}"
if ! "$PY" -c "import mmseg" 2>/dev/null; then
    echo "error: MMSegmentation is not installed in $PY's environment;" \
        "install it with: pip install mmsegmentation==1.2.2 ftfy regex prettytable" >&2
    exit 2
fi
WORK_DIR=${WORK_DIR:-work_dirs/$(basename "${CFG%.py}")}
mkdir -p "$WORK_DIR"
# shellcheck disable=SC2086
"$PY" "$DIR/model_converters/extract_backbone_weights.py" "$CKPT" \
    "$WORK_DIR/backbone.pth" --source "${SOURCE:-online}" \
    --depth "${DEPTH:-50}" --verify ${CONVERT_ARGS:-}
bash "$DIR/dist_train.sh" "$CFG" "$GPUS" --work-dir "$WORK_DIR" \
    --cfg-options model.backbone.init_cfg.type=Pretrained \
    model.backbone.init_cfg.checkpoint="$WORK_DIR/backbone.pth" \
    model.backbone.init_cfg.prefix=None \
    "${@:4}"
