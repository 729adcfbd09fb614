#!/usr/bin/env bash
# tools/dist_train.sh CONFIG NPROC [args...]
# torchrun launcher; NCCL on GPUs (config's env_cfg), gloo without GPUs
# (mmssl_ext.utils.launch).
# Env: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500):
#        multi-node: run this once per node with the same MASTER_ADDR/PORT.
#      MAX_RESTARTS (0): torchrun restarts the worker group this many times
#        when a worker fails; the restarted workers resume from the last
#        checkpoint (TORCHELASTIC_RESTART_COUNT > 0 makes --resume the
#        default). RDZV_BACKEND / RDZV_ENDPOINT / RDZV_ID: torchrun's
#        rendezvous (c10d for restarts across several nodes).
#      MONITOR_INTERVAL (torchrun's default): seconds between worker checks.
# SIGTERM / SIGUSR1 to this script go to the workers, which stop at the same
# iteration with a checkpoint; the script then exits with status 75
# (preempted: requeue / run again with --resume).
set -uo pipefail
CONFIG=$1
NPROC=$2
SHIFT=2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MAX_RESTARTS=${MAX_RESTARTS:-0}
DIR="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-$( [ -x "$DIR/../.venv/bin/python" ] && echo "$DIR/../.venv/bin/python" || echo python)}"
RDZV=()
if [ -n "${RDZV_BACKEND:-}" ]; then
    RDZV+=(--rdzv-backend="$RDZV_BACKEND")
    [ -n "${RDZV_ENDPOINT:-}" ] && RDZV+=(--rdzv-endpoint="$RDZV_ENDPOINT")
    [ -n "${RDZV_ID:-}" ] && RDZV+=(--rdzv-id="$RDZV_ID")
else
    RDZV+=(--master_addr="$MASTER_ADDR" --master_port="$PORT")
fi
[ -n "${MONITOR_INTERVAL:-}" ] && RDZV+=(--monitor-interval="$MONITOR_INTERVAL")
# a preempted worker writes its checkpoint path here and exits 0 (so that
# torchrun does not restart the group); this script then exits 75
export MMSSL_PREEMPT_FILE
MMSSL_PREEMPT_FILE=$(mktemp "${TMPDIR:-/tmp}/mmssl-preempt.XXXXXX")
rm -f "$MMSSL_PREEMPT_FILE"
# torchrun would die of a SIGUSR1 sent to every process of the job (SLURM's
# --signal without B:): start it with SIGUSR1 ignored; the workers install
# their own handler
trap '' USR1
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
"$PY" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --nproc_per_node="$NPROC" --max-restarts="$MAX_RESTARTS" "${RDZV[@]}" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "${@:$((SHIFT+1))}" &
PID=$!
forward() {  # to the workers (torchrun's children), not to torchrun
    pkill -"$1" -P "$PID" 2>/dev/null || true
}
trap 'forward TERM' TERM
trap 'forward USR1' USR1
while :; do  # a trapped signal interrupts `wait`: wait again
    wait "$PID"
    RC=$?
    kill -0 "$PID" 2>/dev/null || break
done
if [ "$RC" -gt 128 ]; then  # interrupted just as torchrun ended
    wait "$PID"
    RC=$?
fi
if [ -s "$MMSSL_PREEMPT_FILE" ]; then
    echo "preempted: checkpoint $(head -n 1 "$MMSSL_PREEMPT_FILE"); " \
        "run again with --resume (exit status 75)" >&2
    rm -f "$MMSSL_PREEMPT_FILE"
    exit 75
fi
rm -f "$MMSSL_PREEMPT_FILE"
exit $RC
