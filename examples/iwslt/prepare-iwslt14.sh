#!/usr/bin/env bash
# IWSLT14 German-English, prepared as fairseq's examples/translation/prepare-iwslt14.sh
# does (same source, same line filters and splits, Moses-tokenised then lowercased:
# lrdrop_cli/iwslt_text.py), but with sacremoses instead of the mosesdecoder perl scripts
# and a joint sentencepiece BPE (10k) instead of subword-nmt. Needs the internet (the
# download) and `make setup`.
#
#   bash examples/iwslt/prepare-iwslt14.sh [WORK_DIR]   (default: data/iwslt14)
#
# Result: WORK_DIR/data-bin (fairseq-preprocess --joined-dictionary), the
# sentencepiece model WORK_DIR/spm.model, and the text in WORK_DIR/tok and WORK_DIR/raw.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
WORK=${1:-$ROOT/data/iwslt14}
URL=${IWSLT14_URL:-http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz}
VOCAB=${VOCAB:-10000}

[ -x "$PY" ] || { echo "prepare-iwslt14: $PY not found; run 'make setup' first (or set PYTHON=...)" >&2; exit 1; }
mkdir -p "$WORK/orig"
if [ ! -d "$WORK/orig/de-en" ]; then
  echo "[prepare] downloading $URL"
  if ! curl -fsSL --retry 2 --connect-timeout 20 -o "$WORK/orig/de-en.tgz" "$URL"; then
    echo "prepare-iwslt14: could not download $URL (no internet here?)." >&2
    echo "  Download de-en.tgz by other means into $WORK/orig/ and run again, or set IWSLT14_URL." >&2
    echo "  Without the internet, 'make demo' trains on the built-in German-English corpus instead." >&2
    rm -f "$WORK/orig/de-en.tgz"; exit 1
  fi
  tar -xzf "$WORK/orig/de-en.tgz" -C "$WORK/orig"
fi
for f in train.tags.de-en.de train.tags.de-en.en IWSLT14.TED.tst2012.de-en.en.xml; do
  [ -f "$WORK/orig/de-en/$f" ] || { echo "prepare-iwslt14: $WORK/orig/de-en/$f missing; the archive is incomplete. Delete $WORK/orig and retry." >&2; exit 1; }
done

echo "[prepare] extract, tokenise, clean, lowercase, split (sizes beside fairseq's)"
"$PY" -m lrdrop_cli.iwslt_text "$WORK/orig/de-en" "$WORK"

echo "[prepare] joint sentencepiece BPE ($VOCAB)"
"$PY" - "$WORK" "$VOCAB" <<'PYEOF'
import sys, sentencepiece as spm
work, vocab = sys.argv[1], int(sys.argv[2])
spm.SentencePieceTrainer.train(input=[f"{work}/tok/train.de", f"{work}/tok/train.en"], model_prefix=f"{work}/spm",
    vocab_size=vocab, model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
    input_sentence_size=2000000, shuffle_input_sentence=True, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=f"{work}/spm.model")
import os; os.makedirs(f"{work}/spm", exist_ok=True)
for split in ("train", "valid", "test"):
    for lang in ("de", "en"):
        with open(f"{work}/tok/{split}.{lang}", encoding="utf-8") as f, open(f"{work}/spm/{split}.{lang}", "w", encoding="utf-8") as g:
            for line in f:
                g.write(" ".join(sp.encode(line.strip(), out_type=str)) + "\n")
PYEOF

echo "[prepare] fairseq-preprocess"
"$BIN/fairseq-preprocess" --source-lang de --target-lang en --joined-dictionary \
  --trainpref "$WORK/spm/train" --validpref "$WORK/spm/valid" --testpref "$WORK/spm/test" \
  --destdir "$WORK/data-bin" --workers "${WORKERS:-8}"
echo "[prepare] done: $WORK/data-bin"
