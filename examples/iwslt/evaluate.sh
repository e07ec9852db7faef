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
BIN=$(dirname "$PY")
CKPT=${1:?usage: evaluate.sh CHECKPOINT [WORK_DIR]}
WORK=${2:-$ROOT/data/iwslt14}
OUT=${OUT:-$(dirname "$CKPT")/test}
mkdir -p "$OUT"
[ -f "$CKPT" ] || { echo "evaluate.sh: no checkpoint $CKPT" >&2; exit 1; }

"$BIN/fairseq-generate" "$WORK/data-bin" --user-dir "$ROOT/lrdrop_fairseq" --path "$CKPT" \
  --gen-subset test --beam 5 --lenpen 1.0 --max-tokens 8000 --remove-bpe sentencepiece > "$OUT/generate.txt"
grep '^D-' "$OUT/generate.txt" | sed 's/^D-//' | sort -n -k1,1 | cut -f3 > "$OUT/hyp.tok.en"

echo "== detokenised sacreBLEU (comparable across papers and tokenisations)"
"$PY" "$ROOT/scripts/score_bleu.py" "$OUT/hyp.tok.en" "$WORK/raw/test.en" --detok-hyps en
echo "== tokenised, compound-split BLEU (lowercased Moses tokens; the papers' figure)"
"$PY" "$ROOT/scripts/score_bleu.py" "$OUT/hyp.tok.en" "$WORK/tok/test.en" --compound-split
