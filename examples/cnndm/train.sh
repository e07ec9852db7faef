#!/usr/bin/env bash
# BART-large fine-tuning on CNN/DailyMail with R-Drop's published settings; MODE picks
# the regularizer. Same data, batch and schedule for every mode.
#
#   bash examples/cnndm/train.sh MODE [extra fairseq-train args...]
#
#   baseline  bart_large, label-smoothed cross-entropy (fairseq's BART recipe)
#   rdrop     R-Drop: lr_drop with --kl-weight 0.7 only (R-Drop's CNN/DM alpha)
#   lrdrop    LR-Drop as the paper has it: output KL + hidden states (the FFN sublayer's
#             output, HS(x)) + attention
#   lrdrop_layer  the same with the hidden term at each layer's output (our earlier reading)
#             (bart_lrdrop_large)
#   hidden    ablation: R-Drop + hidden-state consistency (FFN output)
#   attn      ablation: R-Drop + attention consistency
#
# Environment: DATA (default data/cnndm/data-bin), BART (data/bart.large/model.pt, from
# https://dl.fbaipublicfiles.com/fairseq/models/bart.large.tar.gz), SAVE
# (checkpoints/cnndm-MODE), KL (0.7), HIDDEN and ATTN (the weights of the terms MODE has;
# defaults: lrdrop-modes --help), MAX_TOKENS (1024 per copy), UPDATE_FREQ (default:
# 65,536 tokens per update / (MAX_TOKENS x GPUS); GPUS defaults to the visible GPUs), TOTAL_UPDATES (20000), FP16 (1).
# All local GPUs are used (fairseq's own multi-GPU training); for several nodes, run
# this command through scripts/train_distributed.sh (see the README). Extra arguments
# go last, so they override anything here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "examples/cnndm/train.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')  # the installed plugin
MODE=${1:-}
shift || true
DATA=${DATA:-$ROOT/data/cnndm/data-bin}
BART=${BART:-$ROOT/data/bart.large/model.pt}
SAVE=${SAVE:-$ROOT/checkpoints/cnndm-$MODE}
KL=${KL:-0.7}
TOTAL_UPDATES=${TOTAL_UPDATES:-20000}
MAX_TOKENS=${MAX_TOKENS:-1024}

# the criterion flags of MODE, from the one table of modes (lrdrop_cli/modes.py)
CRIT=($("$BIN/lrdrop-modes" "$MODE" --kl-weight "$KL" ${HIDDEN:+--hidden-weight "$HIDDEN"} ${ATTN:+--attn-weight "$ATTN"})) || {
  echo "usage: $0 baseline|rdrop|lrdrop|hidden|attn [fairseq-train args...]" >&2; exit 2; }
ARCH=bart_lrdrop_large
[ "$MODE" = baseline ] && ARCH=bart_large
[ -f "$DATA/dict.source.txt" ] || { echo "train.sh: no binarized data in $DATA; run examples/cnndm/prepare.sh first (or set DATA=...)" >&2; exit 1; }
[ -f "$BART" ] || { echo "train.sh: no BART checkpoint at $BART; download and unpack https://dl.fbaipublicfiles.com/fairseq/models/bart.large.tar.gz into $(dirname "$(dirname "$BART")") (or set BART=.../model.pt)" >&2; exit 1; }
FP16_ARGS=()
[ "${FP16:-1}" = 1 ] && FP16_ARGS=(--fp16)
# 65,536 tokens (per copy) per update, as fairseq's BART recipe (8 x 2048 x 4) and R-Drop's
# (4 x 1024 x 16): UPDATE_FREQ follows from MAX_TOKENS and the GPUs fairseq will use
GPUS=${GPUS:-$("$PY" -c 'import torch; print(max(1, torch.cuda.device_count()))')}
UPDATE_FREQ=${UPDATE_FREQ:-$("$PY" -m lrdrop_cli.cnndm_text update-freq --max-tokens "$MAX_TOKENS" --gpus "$GPUS")}
echo "[cnndm] $MAX_TOKENS tokens x $GPUS GPU(s) x update-freq $UPDATE_FREQ = $((MAX_TOKENS * GPUS * UPDATE_FREQ)) tokens per update (papers: 65536)"

mkdir -p "$SAVE"
"$BIN/fairseq-train" "$DATA" --user-dir "$USER_DIR" --arch "$ARCH" "${CRIT[@]}" \
  --restore-file "$BART" --reset-optimizer --reset-dataloader --reset-meters \
  --task translation --source-lang source --target-lang target --truncate-source \
  --layernorm-embedding --share-all-embeddings --share-decoder-input-output-embed \
  --required-batch-size-multiple 1 --max-tokens "$MAX_TOKENS" --update-freq "$UPDATE_FREQ" \
  --dropout 0.1 --attention-dropout 0.1 --weight-decay 0.01 \
  --optimizer adam --adam-betas '(0.9,0.999)' --adam-eps 1e-08 --clip-norm 0.1 \
  --lr-scheduler polynomial_decay --lr 3e-05 --total-num-update "$TOTAL_UPDATES" --max-update "$TOTAL_UPDATES" \
  --warmup-updates 500 "${FP16_ARGS[@]}" --skip-invalid-size-inputs-valid-test --find-unused-parameters \
  --seed "${SEED:-1}" --save-dir "$SAVE" --no-epoch-checkpoints \
  --log-format json --log-interval 100 --log-file "$SAVE/train.log" \
  "$@"
