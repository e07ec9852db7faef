#!/usr/bin/env bash
# Beam-5 test-set translation of an IWSLT14 checkpoint and two BLEU figures.
#
#   bash examples/iwslt/evaluate.sh CHECKPOINT [WORK_DIR]    (WORK_DIR default data/iwslt14)
#
# 1. detokenised sacreBLEU with its signature: the comparable figure;
# 2. tokenised, compound-split BLEU on lowercased Moses tokens: what the
#    R-Drop/LR-Drop papers (and fairseq's IWSLT recipe) report.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "examples/iwslt/evaluate.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')  # the installed plugin
CKPT=${1:?usage: evaluate.sh CHECKPOINT [WORK_DIR]}
WORK=${2:-$ROOT/data/iwslt14}
OUT=${OUT:-$(dirname "$CKPT")/test}
mkdir -p "$OUT"
[ -f "$CKPT" ] || { echo "evaluate.sh: no checkpoint $CKPT" >&2; exit 1; }

"$BIN/fairseq-generate" "$WORK/data-bin" --user-dir "$USER_DIR" --path "$CKPT" \
  --gen-subset test --beam 5 --lenpen 1.0 --max-tokens 8000 --remove-bpe sentencepiece > "$OUT/generate.txt"
"$BIN/lrdrop-hypotheses" "$OUT/generate.txt" > "$OUT/hyp.tok.en"

echo "== detokenised sacreBLEU (comparable across papers and tokenisations)"
"$BIN/lrdrop-score-bleu" "$OUT/hyp.tok.en" "$WORK/raw/test.en" --detok-hyps en
echo "== tokenised, compound-split BLEU (lowercased Moses tokens; the papers' figure)"
"$BIN/lrdrop-score-bleu" "$OUT/hyp.tok.en" "$WORK/tok/test.en" --compound-split
