#!/usr/bin/env bash
# Detection transfer of a self-supervised checkpoint, C4 detectors
# (Faster R-CNN R50-C4 on VOC07+12, ...):
#
#   bash tools/benchmarks/mmdetection/dist_train_c4.sh CONFIG CKPT GPUS [train.py args]
#
# CKPT: a pre-training checkpoint or an already extracted backbone file
# (path or URL). It is converted (idempotently) by
# tools/model_converters/extract_backbone_weights.py into
# $WORK_DIR/backbone.pth, which initialises the backbone AND the C5 shared
# head (layer4). Env: WORK_DIR (default work_dirs/<config name>), SOURCE
# (online|momentum, default online), CONVERT_ARGS (extra converter options)
# and tools/dist_train.sh's NNODES, NODE_RANK, PORT, MASTER_ADDR. A
# checkpoint that does not fit the detector (e.g. a ResNet-18 into this
# ResNet-50 detector) stops the script before training; docs/transfer.md
# lists the load-time log lines that are expected.
set -euo pipefail
CFG=$1
CKPT=$2
GPUS=$3
DIR="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$( [ -x "$DIR/../.venv/bin/python" ] && echo "$DIR/../.venv/bin/python" || echo python)}"
WORK_DIR=${WORK_DIR:-work_dirs/$(basename "${CFG%.py}")}
mkdir -p "$WORK_DIR"
# Convert, then check against CONFIG before any training starts: the
# depth must match the detector's backbone and its C4 shared head (exit 2)
# and every ResNet key they need must be there with the right shape
# (exit 1); set -e stops the script on either. CONVERT_ARGS: more converter options,
# e.g. "--allow-pickle" for checkpoints that pickle Python objects.
# shellcheck disable=SC2086
"$PY" "$DIR/model_converters/extract_backbone_weights.py" "$CKPT" \
    "$WORK_DIR/backbone.pth" --source "${SOURCE:-online}" \
    --target-config "$CFG" ${CONVERT_ARGS:-}
bash "$DIR/dist_train.sh" "$CFG" "$GPUS" --work-dir "$WORK_DIR" \
    --cfg-options model.backbone.init_cfg.type=Pretrained \
    model.backbone.init_cfg.checkpoint="$WORK_DIR/backbone.pth" \
    model.backbone.init_cfg.prefix=None \
    model.roi_head.shared_head.init_cfg.type=Pretrained \
    model.roi_head.shared_head.init_cfg.checkpoint="$WORK_DIR/backbone.pth" \
    model.roi_head.shared_head.init_cfg.prefix=None \
    "${@:4}"
