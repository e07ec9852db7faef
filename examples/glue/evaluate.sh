#!/usr/bin/env bash
# The task's own metric for a fine-tuned checkpoint on GLUE dev (MNLI: matched as
# "valid", mismatched as "test"): accuracy, plus F1 (MRPC, QQP), Matthews correlation
# (CoLA) or Pearson/Spearman (STS-B), from fairseq's sentence_prediction criterion.
#
#   bash examples/glue/evaluate.sh TASK CHECKPOINT      (e.g. checkpoints/glue-RTE-lrdrop/checkpoint_best.pt)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "examples/glue/evaluate.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')
TASK=${1:-} CKPT=${2:-}
[ -n "$TASK" ] && [ -n "$CKPT" ] || { echo "usage: $0 TASK CHECKPOINT" >&2; exit 2; }
DATA=${DATA:-$ROOT/data/glue/$TASK-bin}
[ -f "$CKPT" ] || { echo "evaluate.sh: no checkpoint $CKPT (train with examples/glue/train.sh first)" >&2; exit 1; }
[ -f "$DATA/input0/dict.txt" ] || { echo "evaluate.sh: no binarized $TASK in $DATA; run examples/glue/prepare.sh $TASK" >&2; exit 1; }
SUBSETS=valid
[ -f "$DATA/input0/test.bin" ] && SUBSETS=valid,test
CPU=()
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || CPU=(--cpu)
# the criterion's report flags (--report-mcc ...) come from the checkpoint's own config. The whole
# output goes to a log, so a crash shows its traceback instead of an empty grep.
LOG="$(dirname "$CKPT")/evaluate-$TASK.log"
if ! "$BIN/fairseq-validate" "$DATA" --user-dir "$USER_DIR" --path "$CKPT" --task sentence_prediction \
  --criterion lr_drop_sentence_prediction --valid-subset "$SUBSETS" --batch-size 32 --max-tokens 8800 "${CPU[@]}" \
  > "$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2
  echo "evaluate.sh: fairseq-validate failed (full log: $LOG)" >&2
  exit 1
fi
grep -E "\| (valid|test) \|" "$LOG"
