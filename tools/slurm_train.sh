#!/usr/bin/env bash
# tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [args...]
# Env: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS,
#      SIGNAL_NOTICE (120): srun sends SIGUSR1 this many seconds before the
#        time limit (srun --signal); training then stops with a checkpoint,
#      MAX_REQUEUES (10): outside sbatch, how often to start srun again.
# A preempted run (SIGTERM / SIGUSR1: every rank saves one checkpoint at the
# same iteration and exits with status 75) is requeued: inside an sbatch job
# with `scontrol requeue $SLURM_JOB_ID` (submit with e.g.
# `sbatch --requeue --signal=B:USR1@120`; the batch shell forwards the signal
# to srun, which forwards it to the tasks), otherwise (srun from a login
# node) by starting srun again. A requeued run resumes from the last
# checkpoint: `--resume` is the default when SLURM_RESTART_COUNT > 0.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=${4:-work_dirs/$(basename "$CONFIG" .py)}
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
SIGNAL_NOTICE=${SIGNAL_NOTICE:-120}
MAX_REQUEUES=${MAX_REQUEUES:-10}
PY_ARGS=("${@:5}")
EXIT_PREEMPTED=75

run_srun() {
    PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
    srun -p "${PARTITION}" --job-name="${JOB_NAME}" --gres=gpu:${GPUS_PER_NODE} \
        --ntasks=${GPUS} --ntasks-per-node=${GPUS_PER_NODE} \
        --cpus-per-task=${CPUS_PER_TASK} --kill-on-bad-exit=1 \
        --signal=USR1@${SIGNAL_NOTICE} ${SRUN_ARGS} \
        python -u "$(dirname "$0")/train.py" "${CONFIG}" --work-dir="${WORK_DIR}" \
        --launcher="slurm" "$@" &
    SRUN_PID=$!
    # the batch shell gets --signal=B:... and SIGTERM: pass them to srun
    trap 'kill -USR1 $SRUN_PID 2>/dev/null' USR1
    trap 'kill -TERM $SRUN_PID 2>/dev/null' TERM
    while :; do
        wait $SRUN_PID
        RC=$?
        kill -0 $SRUN_PID 2>/dev/null || break
    done
    trap - USR1 TERM
    return $RC
}

run_srun "${PY_ARGS[@]}"
RC=$?
if [ -n "${SLURM_JOB_ID:-}" ]; then
    if [ $RC -eq $EXIT_PREEMPTED ]; then
        echo "preempted: requeueing job ${SLURM_JOB_ID}" >&2
        scontrol requeue "${SLURM_JOB_ID}" || exit $RC
        exit 0
    fi
    exit $RC
fi
N=0
while [ $RC -eq $EXIT_PREEMPTED ] && [ $N -lt $MAX_REQUEUES ]; do
    N=$((N + 1))
    echo "preempted: starting srun again (${N}/${MAX_REQUEUES})," \
        "resuming from the last checkpoint" >&2
    SLURM_RESTART_COUNT=$N run_srun "${PY_ARGS[@]}" --resume
    RC=$?
done
exit $RC
