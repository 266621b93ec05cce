#!/usr/bin/env bash
# Data-parallel training with torchrun: one process per GPU, tools/train.py --launcher pytorch in each.
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py options]        one machine, GPUS processes
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8 ...   on node 0
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 PORT=29500 tools/dist_train.sh CONFIG 8 ...   on node 1
#   NNODES=1:4 RDZV_ENDPOINT=host:29400 RDZV_ID=job42 MAX_RESTARTS=3 tools/dist_train.sh CONFIG 8 --resume
#                                                        elastic (c10d rendezvous), restarted workers resume
#
# PYTHON picks the interpreter (default: python). On machines without GPUs the processes train on CPU and the
# config must use gloo:
#   tools/dist_train.sh CONFIG 2 --cfg-options env_cfg.dist_cfg.backend=gloo
set -euo pipefail

usage() {
    echo "usage: [NNODES=N NODE_RANK=R MASTER_ADDR=HOST PORT=P | RDZV_ENDPOINT=HOST:PORT] $0 CONFIG GPUS [args]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
CONFIG=$1
GPUS=$2
shift 2
[[ $GPUS =~ ^[1-9][0-9]*$ ]] || { echo "GPUS must be a positive number of processes per node, got '$GPUS'" >&2; usage; }
[ -f "$CONFIG" ] || { echo "config file '$CONFIG' does not exist" >&2; exit 2; }

TOOLS=$(cd "$(dirname "$0")" && pwd)
NNODES=${NNODES:-1}
if [ -n "${RDZV_ENDPOINT:-}" ]; then
    LAUNCH=(--nnodes="$NNODES" --rdzv-backend=c10d --rdzv-endpoint="$RDZV_ENDPOINT" --rdzv-id="${RDZV_ID:-petl_vision}"
            --max-restarts="${MAX_RESTARTS:-0}")
else
    LAUNCH=(--nnodes="$NNODES" --node-rank="${NODE_RANK:-0}" --master-addr="${MASTER_ADDR:-127.0.0.1}"
            --master-port="${PORT:-29500}")
fi

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" -m torch.distributed.run "${LAUNCH[@]}" \
    --nproc-per-node="$GPUS" "$TOOLS/train.py" "$CONFIG" --launcher pytorch "$@"
