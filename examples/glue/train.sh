#!/usr/bin/env bash
# RoBERTa fine-tuning on a GLUE task with fairseq's published per-task settings
# (examples/roberta/README.glue.md); MODE picks the regularizer. Same data, batch and
# schedule for every mode.
#
#   bash examples/glue/train.sh TASK MODE [extra fairseq-train args...]
#
#   TASK      MNLI QNLI QQP RTE SST-2 MRPC CoLA STS-B (prepared by examples/glue/prepare.sh)
#   baseline  roberta_large, fairseq's sentence_prediction criterion
#   rdrop     R-Drop: lr_drop_sentence_prediction with the output term only
#   lrdrop    LR-Drop as the paper has it: output KL (STS-B: squared prediction
#             difference) + encoder hidden states (FFN output, HS(x)) + self-attention
#             (roberta_lrdrop_large); lrdrop_layer: the hidden term at each layer's output
#   hidden    ablation: R-Drop + hidden-state consistency
#   attn      ablation: R-Drop + self-attention consistency
#
# Environment: DATA (default data/glue/TASK-bin), ROBERTA (data/roberta.large/model.pt, from
# https://dl.fbaipublicfiles.com/fairseq/models/roberta.large.tar.gz), SIZE (large; base
# with roberta.base), SAVE (checkpoints/glue-TASK-MODE), KL (1), HIDDEN and ATTN
# (the weights of the terms MODE has; defaults: lrdrop-modes --help),
# SEED (1), FP16 (1). The task's own metric (accuracy, F1, Matthews correlation,
# Pearson/Spearman) is logged at each validation; examples/glue/evaluate.sh reports it for
# the best checkpoint. Extra arguments go last, so they override anything here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "examples/glue/train.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')  # the installed plugin
TASK=${1:-} MODE=${2:-}
shift 2 || true
usage="usage: $0 MNLI|QNLI|QQP|RTE|SST-2|MRPC|CoLA|STS-B baseline|rdrop|lrdrop|hidden|attn [fairseq-train args...]"
HP=$("$PY" -m lrdrop_cli.glue_text hparams "$TASK" 2>&1) || { echo "$HP" >&2; echo "$usage" >&2; exit 2; }
eval "$HP"  # NUM_CLASSES LR MAX_SENTENCES TOTAL_UPDATES WARMUP METRIC_ARGS METRIC_NOTE KL_PER_ALPHA
[ -n "$METRIC_NOTE" ] && echo "[glue] note: $METRIC_NOTE" >&2
SIZE=${SIZE:-large}
DATA=${DATA:-$ROOT/data/glue/$TASK-bin}
ROBERTA=${ROBERTA:-$ROOT/data/roberta.$SIZE/model.pt}
SAVE=${SAVE:-$ROOT/checkpoints/glue-$TASK-$MODE}
# R-Drop's alpha in our units (lrdrop_cli/glue_text.py): KL = 2 x alpha x batch size (regression: 2 x alpha)
ALPHA=${ALPHA:-0.5}
KL=${KL:-$("$PY" -c "print(f'{$ALPHA * $KL_PER_ALPHA:g}')")}

# the criterion flags of MODE, from the one table of modes (lrdrop_cli/modes.py)
REG=()
[ "$NUM_CLASSES" = 1 ] && REG=(--regression)
CRIT=($("$BIN/lrdrop-modes" "$MODE" --task sentence_prediction "${REG[@]}" \
  --kl-weight "$KL" ${HIDDEN:+--hidden-weight "$HIDDEN"} ${ATTN:+--attn-weight "$ATTN"})) || { echo "$usage" >&2; exit 2; }
ARCH=roberta_lrdrop_$SIZE
[ "$MODE" = baseline ] && ARCH=roberta_$SIZE
[ -f "$DATA/input0/dict.txt" ] || { echo "train.sh: no binarized $TASK in $DATA; run examples/glue/prepare.sh $TASK first (or set DATA=...)" >&2; exit 1; }
[ -f "$ROBERTA" ] || { echo "train.sh: no RoBERTa checkpoint at $ROBERTA; download and unpack https://dl.fbaipublicfiles.com/fairseq/models/roberta.$SIZE.tar.gz into $(dirname "$(dirname "$ROBERTA")") (or set ROBERTA=.../model.pt)" >&2; exit 1; }
FP16_ARGS=()
[ "${FP16:-1}" = 1 ] && FP16_ARGS=(--fp16 --fp16-init-scale 4 --threshold-loss-scale 1 --fp16-scale-window 128)
# fairseq's per-task settings are for one GPU: on N, the batch would be N times larger and the
# 10 epochs would end early in the learning-rate schedule
GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
if [ "$GPUS" -gt 1 ]; then
  echo "train.sh: $GPUS GPUs visible, but fairseq's GLUE settings (batch $MAX_SENTENCES, $TOTAL_UPDATES updates) are for one GPU; run with CUDA_VISIBLE_DEVICES set to one of them (e.g. CUDA_VISIBLE_DEVICES=0)" >&2
  exit 1
fi
echo "[glue] $TASK: batch $MAX_SENTENCES on one device, output weight KL=$KL (R-Drop alpha $ALPHA)"

mkdir -p "$SAVE"
"$BIN/fairseq-train" "$DATA" --user-dir "$USER_DIR" --arch "$ARCH" "${CRIT[@]}" \
  --restore-file "$ROBERTA" --reset-optimizer --reset-dataloader --reset-meters \
  --task sentence_prediction --num-classes "$NUM_CLASSES" --init-token 0 --separator-token 2 \
  --max-positions 512 --batch-size "$MAX_SENTENCES" --max-tokens 4400 --required-batch-size-multiple 1 \
  --dropout 0.1 --attention-dropout 0.1 --weight-decay 0.1 \
  --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-06 --clip-norm 0.0 \
  --lr-scheduler polynomial_decay --lr "$LR" --total-num-update "$TOTAL_UPDATES" --warmup-updates "$WARMUP" \
  --max-epoch 10 "${FP16_ARGS[@]}" --find-unused-parameters "${METRIC_ARGS[@]}" \
  --seed "${SEED:-1}" --save-dir "$SAVE" --no-epoch-checkpoints \
  --log-format json --log-interval 100 \
  "$@" 2>&1 | tee -a "$SAVE/train.log"
exit "${PIPESTATUS[0]}"
