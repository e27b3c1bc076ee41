#!/usr/bin/env bash
# Multi-GPU training on one machine with torchrun, as MMDetection's tools/dist_train.sh:
#   tools/dist_train.sh CONFIG GPUS [train.py arguments...]
# NNODES, NODE_RANK, MASTER_ADDR and PORT select a multi-machine run.
set -euo pipefail
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS=$(dirname "$0")
PYTHONPATH="$TOOLS/..:${PYTHONPATH:-}" \
python -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
