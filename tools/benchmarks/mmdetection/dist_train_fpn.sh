#!/usr/bin/env bash
# Detection transfer of a self-supervised checkpoint, FPN detectors
# (Mask R-CNN R50-FPN 1x on COCO, ...):
#
#   bash tools/benchmarks/mmdetection/dist_train_fpn.sh CONFIG CKPT GPUS [train.py args]
#
# CKPT: a pre-training checkpoint or an already extracted backbone file
# (path or URL), converted (idempotently) into $WORK_DIR/backbone.pth by
# tools/model_converters/extract_backbone_weights.py. Env: WORK_DIR
# (default work_dirs/<config name>), SOURCE (online|momentum), CONVERT_ARGS
# (extra converter options) and tools/dist_train.sh's NNODES, NODE_RANK,
# PORT, MASTER_ADDR. A checkpoint that does not fit the detector (e.g. a
# ResNet-18 into this ResNet-50 detector) stops the script before training;
# docs/transfer.md lists the load-time log lines that are expected.
set -euo pipefail
CFG=$1
CKPT=$2
GPUS=$3
DIR="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-$( [ -x "$DIR/../.venv/bin/python" ] && echo "$DIR/../.venv/bin/python" || echo python)}"
WORK_DIR=${WORK_DIR:-work_dirs/$(basename "${CFG%.py}")}
mkdir -p "$WORK_DIR"
# Convert, then check against CONFIG before any training starts: the
# depth must match the detector's backbone (exit 2) and
# every ResNet key it needs must be there with the right shape (exit 1);
# set -e stops the script on either. CONVERT_ARGS: more converter options,
# e.g. "--allow-pickle" for checkpoints that pickle Python objects.
# shellcheck disable=SC2086
"$PY" "$DIR/model_converters/extract_backbone_weights.py" "$CKPT" \
    "$WORK_DIR/backbone.pth" --source "${SOURCE:-online}" \
    --target-config "$CFG" ${CONVERT_ARGS:-}
bash "$DIR/dist_train.sh" "$CFG" "$GPUS" --work-dir "$WORK_DIR" \
    --cfg-options model.backbone.init_cfg.type=Pretrained \
    model.backbone.init_cfg.checkpoint="$WORK_DIR/backbone.pth" \
    model.backbone.init_cfg.prefix=None \
    "${@:4}"
