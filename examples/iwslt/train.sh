#!/usr/bin/env bash
# IWSLT14 de-en with R-Drop's published settings; MODE picks the regularizer.
#
#   bash examples/iwslt/train.sh MODE [extra fairseq-train args...]
#
#   baseline  transformer_iwslt_de_en, label-smoothed cross-entropy
#   rdrop     R-Drop: lr_drop with --kl-weight 5 only
#   lrdrop    LR-Drop as the paper has it: output KL + hidden states (the FFN sublayer's
#             output, HS(x)) + attention
#   lrdrop_layer  the same with the hidden term at each layer's output (our earlier reading)
#   hidden    ablation: R-Drop + hidden-state consistency (FFN output)
#   attn      ablation: R-Drop + attention consistency
#
# Environment: DATA (default data/iwslt14/data-bin), SAVE (checkpoints/iwslt14-MODE),
# KL (5), HIDDEN and ATTN (the weights of the terms MODE has; defaults: lrdrop-modes --help),
# MAX_UPDATE, SEED. Extra arguments go last to
# fairseq-train, so they override anything here (e.g. --fp16, --update-freq 2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "examples/iwslt/train.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')  # the installed plugin
MODE=${1:-}
shift || true
DATA=${DATA:-$ROOT/data/iwslt14/data-bin}
SAVE=${SAVE:-$ROOT/checkpoints/iwslt14-$MODE}
KL=${KL:-5}

# the criterion flags of MODE, from the one table of modes (lrdrop_cli/modes.py)
CRIT=($("$BIN/lrdrop-modes" "$MODE" --kl-weight "$KL" ${HIDDEN:+--hidden-weight "$HIDDEN"} ${ATTN:+--attn-weight "$ATTN"})) || {
  echo "usage: $0 baseline|rdrop|lrdrop|hidden|attn [fairseq-train args...]" >&2; exit 2; }
ARCH=transformer_lrdrop_iwslt_de_en
[ "$MODE" = baseline ] && ARCH=transformer_iwslt_de_en
[ -f "$DATA/dict.de.txt" ] || { echo "train.sh: no binarized data in $DATA; run examples/iwslt/prepare-iwslt14.sh first (or set DATA=...)" >&2; exit 1; }

mkdir -p "$SAVE"
"$BIN/fairseq-train" "$DATA" --user-dir "$USER_DIR" --arch "$ARCH" "${CRIT[@]}" \
  --share-all-embeddings --dropout 0.3 \
  --optimizer adam --adam-betas '(0.9,0.98)' --clip-norm 0.0 --lr 5e-4 \
  --lr-scheduler inverse_sqrt --warmup-updates 4000 --weight-decay 0.0001 \
  --max-tokens 4096 --max-update "${MAX_UPDATE:-300000}" --seed "${SEED:-1}" \
  --eval-bleu --eval-bleu-args '{"beam": 5, "max_len_a": 1.2, "max_len_b": 10}' \
  --eval-bleu-detok moses --eval-bleu-remove-bpe sentencepiece \
  --best-checkpoint-metric bleu --maximize-best-checkpoint-metric \
  --keep-last-epochs 5 --patience "${PATIENCE:-30}" \
  --save-dir "$SAVE" --log-format json --log-interval 100 --log-file "$SAVE/train.log" \
  "$@"
