#!/usr/bin/env bash
# Summarise the CNN/DailyMail test set with a fine-tuned checkpoint and score ROUGE.
#
#   bash examples/cnndm/generate.sh CHECKPOINT [WORK_DIR]     (default WORK_DIR: data/cnndm)
#
# The papers' search settings: beam 4, length penalty 2.0, no repeated trigram, 55 to 140
# tokens. Unlike their bart.sample, no <s> is added before the source or forced as the first
# output token: decoding sees the sources as fine-tuning did (examples/cnndm/README.md).
# ROUGE-1/2/L/Lsum F1 with the rouge-score package (Porter stemming; Lsum on sentence-split
# text; the papers' "ROUGE-L" is Lsum), lrdrop-score-rouge. Writes next to the
# checkpoint: test.hyp (one summary per line, test order) and test.rouge.json.
# Environment: BATCH (sentences per batch, default 32), CPU=1 to decode on CPU.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "examples/cnndm/generate.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
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
