#!/usr/bin/env bash
# One rank under torchrun (used by train_distributed.sh): turn torchrun's
# environment into fairseq's explicit distributed arguments.
set -euo pipefail
: "${RANK:?run through scripts/train_distributed.sh}" "${WORLD_SIZE:?}" "${LOCAL_RANK:?}" "${MASTER_ADDR:?}" "${MASTER_PORT:?}"
DEVICE_ID=$LOCAL_RANK
[ "${LRDROP_CPU:-0}" = 1 ] && DEVICE_ID=0   # fairseq indexes CUDA devices with it; unused on CPU
# env:// joins the store torchrun already serves at MASTER_ADDR:MASTER_PORT (with
# TORCHELASTIC_USE_AGENT_STORE set, a tcp:// address of our own would never be served)
exec "$LRDROP_FAIRSEQ_TRAIN" "$@" --distributed-world-size "$WORLD_SIZE" --distributed-rank "$RANK" \
  --distributed-init-method env:// --distributed-no-spawn --device-id "$DEVICE_ID"
