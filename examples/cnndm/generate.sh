#!/usr/bin/env bash
# Summarise the CNN/DailyMail test set with a fine-tuned checkpoint and score ROUGE.
#
#   bash examples/cnndm/generate.sh CHECKPOINT [WORK_DIR]     (default WORK_DIR: data/cnndm)
#
# Decoding as BART's and R-Drop's papers: beam 4, length penalty 2.0, no repeated
# trigram, 55 to 140 tokens. ROUGE-1/2/L/Lsum F1 with the rouge-score package (Porter
# stemming; Lsum on sentence-split text), scripts/score_rouge.py. Writes next to the
# checkpoint: test.hyp (one summary per line, test order) and test.rouge.json.
# Environment: BATCH (sentences per batch, default 32), CPU=1 to decode on CPU.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')  # the installed plugin
CKPT=${1:?usage: $0 CHECKPOINT [WORK_DIR]}
WORK=${2:-$ROOT/data/cnndm}
OUT=$(dirname "$CKPT")
[ -f "$CKPT" ] || { echo "generate.sh: no checkpoint $CKPT" >&2; exit 1; }
for f in "$WORK/data-bin/test.source-target.source.bin" "$WORK/raw/test.target" "$WORK/gpt2/encoder.json"; do
  [ -f "$f" ] || { echo "generate.sh: $f missing; run examples/cnndm/prepare.sh $WORK first" >&2; exit 1; }
done
CPU_ARGS=()
[ "${CPU:-0}" = 1 ] && CPU_ARGS=(--cpu)

"$BIN/fairseq-generate" "$WORK/data-bin" --user-dir "$USER_DIR" --path "$CKPT" \
  --task translation --source-lang source --target-lang target --gen-subset test --truncate-source \
  --bpe gpt2 --gpt2-encoder-json "$WORK/gpt2/encoder.json" --gpt2-vocab-bpe "$WORK/gpt2/vocab.bpe" \
  --beam 4 --lenpen 2.0 --no-repeat-ngram-size 3 --min-len 55 --max-len-a 0 --max-len-b 140 \
  --batch-size "${BATCH:-32}" "${CPU_ARGS[@]}" > "$OUT/test.generate.log"
"$BIN/lrdrop-hypotheses" "$OUT/test.generate.log" > "$OUT/test.hyp"
"$BIN/lrdrop-score-rouge" "$OUT/test.hyp" "$WORK/raw/test.target" --json "$OUT/test.rouge.json"
