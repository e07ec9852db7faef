#!/usr/bin/env bash
# CNN/DailyMail for BART fine-tuning, as fairseq's examples/bart/README.summarization.md
# prepares it: article/summary text, GPT-2 BPE with fairseq's encoder.json/vocab.bpe,
# fairseq-preprocess with BART's dict.txt. Needs the internet and `make setup`.
#
#   bash examples/cnndm/prepare.sh [WORK_DIR]        (default: data/cnndm)
#
# WORK_DIR/raw/{train,val,test}.{source,target}: downloaded by cnndm_text.py (Hugging
# Face parquet, needs pyarrow), or put there beforehand (e.g. made with
# https://github.com/artmatsak/cnn-dailymail); existing files are used as they are.
# Result: WORK_DIR/data-bin, and WORK_DIR/gpt2 (encoder.json, vocab.bpe, dict.txt).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
WORK=${1:-$ROOT/data/cnndm}
GPT2_URL=${GPT2_URL:-https://dl.fbaipublicfiles.com/fairseq/gpt2_bpe}
WORKERS=${WORKERS:-$(nproc)}

[ -x "$PY" ] || { echo "prepare.sh: $PY not found; run 'make setup' first (or set PYTHON=...)" >&2; exit 1; }
mkdir -p "$WORK/raw" "$WORK/gpt2" "$WORK/bpe"
for f in encoder.json vocab.bpe dict.txt; do
  [ -s "$WORK/gpt2/$f" ] && continue
  if ! curl -fsSL --retry 2 --connect-timeout 20 -o "$WORK/gpt2/$f" "$GPT2_URL/$f"; then
    rm -f "$WORK/gpt2/$f"
    echo "prepare.sh: could not download $GPT2_URL/$f (no internet here?)." >&2
    echo "  Put encoder.json, vocab.bpe and dict.txt (fairseq's GPT-2 BPE files) in $WORK/gpt2/ and rerun." >&2
    echo "  Without the internet, 'make demo-summarization' runs the pipeline on a built-in corpus." >&2
    exit 1
  fi
done
"$PY" -m lrdrop_cli.cnndm_text fetch "$WORK/raw"
for split in train val test; do
  for side in source target; do
    [ -s "$WORK/raw/$split.$side" ] || { echo "prepare.sh: $WORK/raw/$split.$side is missing or empty" >&2; exit 1; }
    [ -s "$WORK/bpe/$split.$side" ] && continue
    echo "[prepare] GPT-2 BPE $split.$side"
    "$PY" -m lrdrop_cli.cnndm_text bpe "$WORK/gpt2/encoder.json" "$WORK/gpt2/vocab.bpe" \
      "$WORK/raw/$split.$side" "$WORK/bpe/$split.$side.tmp" --workers "$WORKERS"
    mv "$WORK/bpe/$split.$side.tmp" "$WORK/bpe/$split.$side"
  done
  n_src=$(wc -l < "$WORK/bpe/$split.source"); n_tgt=$(wc -l < "$WORK/bpe/$split.target")
  [ "$n_src" = "$n_tgt" ] || { echo "prepare.sh: $split has $n_src articles but $n_tgt summaries" >&2; exit 1; }
done
if [ ! -f "$WORK/data-bin/test.source-target.target.bin" ]; then
  "$BIN/fairseq-preprocess" --source-lang source --target-lang target \
    --trainpref "$WORK/bpe/train" --validpref "$WORK/bpe/val" --testpref "$WORK/bpe/test" \
    --destdir "$WORK/data-bin" --srcdict "$WORK/gpt2/dict.txt" --tgtdict "$WORK/gpt2/dict.txt" \
    --workers "$WORKERS"
fi
echo "[prepare] done: $WORK/data-bin"
