#!/usr/bin/env bash
# Distributed testing on PyTorch's own engine (torchrun), one process per GPU (or per CPU
# process on gloo when there is no GPU). Multi-node: run it on every node with
#   NNODES=<nodes> NODE_RANK=<this node> MASTER_ADDR=<node 0 address> PORT=<free port>
# PYTHON picks the interpreter (default: the repository's .venv, else python3).
set -euo pipefail
CONFIG=${1:-}
CHECKPOINT=${2:-}
GPUS=${3:-}
EXTRA=("${@:4}")
USAGE="usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]"
NEED=3
POS=("$CONFIG" "$CHECKPOINT")
if [ "$#" -lt "$NEED" ]; then echo "$USAGE" >&2; exit 2; fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

PYTHONPATH="$ROOT":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$ROOT/tools/test.py" \
    "${POS[@]}" \
    --launcher pytorch "${EXTRA[@]+"${EXTRA[@]}"}"
