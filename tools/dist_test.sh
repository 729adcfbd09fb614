#!/usr/bin/env bash
# tools/dist_test.sh CONFIG CHECKPOINT NPROC [args...]
# torchrun launcher; NCCL on GPUs (config's env_cfg), gloo without GPUs
# (mmssl_ext.utils.launch). Env: NNODES, NODE_RANK, PORT, MASTER_ADDR.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
SHIFT=3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-$( [ -x "$DIR/../.venv/bin/python" ] && echo "$DIR/../.venv/bin/python" || echo python)}"
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
"$PY" -m torch.distributed.run \
    --nnodes=$NNODES --node_rank=$NODE_RANK --master_addr=$MASTER_ADDR \
    --nproc_per_node=$NPROC --master_port=$PORT \
    "$DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:$((SHIFT+1))}"
