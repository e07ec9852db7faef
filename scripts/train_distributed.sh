#!/usr/bin/env bash
# Data-parallel fairseq-train on N local processes (and optionally several nodes)
# through torchrun, with fairseq's own distributed training underneath.
#
#   scripts/train_distributed.sh [--nproc N] [--nnodes M --node-rank R --master-addr HOST --master-port PORT] \
#       -- DATA --user-dir lrdrop_fairseq --criterion lr_drop ... (fairseq-train arguments)
#
# CPU (no CUDA, or --cpu among the arguments): gloo + legacy_ddp, one process per
# rank with OMP_NUM_THREADS = cores / N (without it, ranks oversubscribe the cores).
# GPU: NCCL + pytorch_ddp (c10d), one process per GPU (LOCAL_RANK = GPU index).
# Either way each rank is told its world size and rank explicitly, so fairseq never
# falls back to N independent single-process trainings into one save dir.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "scripts/train_distributed.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")

NPROC=2 NNODES=1 NODE_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=${MASTER_PORT:-29511}
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc) NPROC=$2; shift 2 ;;
    --nnodes) NNODES=$2; shift 2 ;;
    --node-rank) NODE_RANK=$2; shift 2 ;;
    --master-addr) MASTER_ADDR=$2; shift 2 ;;
    --master-port) MASTER_PORT=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "train_distributed.sh: unknown option $1 (fairseq-train arguments go after --)" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "train_distributed.sh: no fairseq-train arguments (put them after --)" >&2; exit 2; }
for a in "$@"; do
  case "$a" in --distributed-world-size*|--distributed-rank*|--distributed-init-method*)
    echo "train_distributed.sh: do not pass $a; this script sets the distributed arguments" >&2; exit 2 ;;
  esac
done

CPU=0
if printf '%s\n' "$@" | grep -qx -- '--cpu' || ! "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  CPU=1
fi
if [ "$CPU" = 1 ]; then
  CORES=$(nproc)
  export OMP_NUM_THREADS=$(( CORES / NPROC > 0 ? CORES / NPROC : 1 ))
  EXTRA=(--cpu --distributed-backend gloo --ddp-backend legacy_ddp)
else
  EXTRA=(--distributed-backend nccl)
  printf '%s\n' "$@" | grep -q -- '--ddp-backend' || EXTRA+=(--ddp-backend pytorch_ddp)
fi
export LRDROP_FAIRSEQ_TRAIN="$BIN/fairseq-train" LRDROP_CPU=$CPU
echo "[distributed] $NNODES node(s) x $NPROC process(es), $([ $CPU = 1 ] && echo "CPU/gloo, OMP_NUM_THREADS=$OMP_NUM_THREADS" || echo GPU/NCCL)"
exec "$BIN/torchrun" --nnodes "$NNODES" --node-rank "$NODE_RANK" --nproc-per-node "$NPROC" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" --no-python \
  bash "$ROOT/scripts/_fairseq_rank.sh" "$@" "${EXTRA[@]}"
