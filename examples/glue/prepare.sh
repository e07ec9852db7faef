#!/usr/bin/env bash
# GLUE for RoBERTa fine-tuning, as fairseq's examples/roberta/preprocess_GLUE_tasks.sh
# prepares it: the task's columns, GPT-2 BPE with fairseq's encoder.json/vocab.bpe, and
# fairseq-preprocess with RoBERTa's dict.txt. Needs the internet and `make setup`.
#
#   bash examples/glue/prepare.sh TASK|ALL [WORK_DIR]        (default: data/glue)
#
# TASK: MNLI QNLI QQP RTE SST-2 MRPC CoLA STS-B. GLUE is fetched with the GLUE
# baselines' download_glue_data.py (GLUE_SCRIPT_URL) into WORK_DIR/glue_data, unless
# WORK_DIR/glue_data/TASK/ is there already (put it there by hand where the download
# fails). Result: WORK_DIR/TASK-bin (input0/, input1/, label/: --task sentence_prediction).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
TASK=${1:-}
WORK=${2:-$ROOT/data/glue}
GPT2_URL=${GPT2_URL:-https://dl.fbaipublicfiles.com/fairseq/gpt2_bpe}
GLUE_SCRIPT_URL=${GLUE_SCRIPT_URL:-https://gist.githubusercontent.com/W4ngatang/60c2bdb54d156a41194446737ce03e2e/raw/17b8dd0d724281ed7c3b2aeeda662b92809aadd5/download_glue_data.py}
WORKERS=${WORKERS:-$(nproc)}
ALL="MNLI QNLI QQP RTE SST-2 MRPC CoLA STS-B"

[ -n "$TASK" ] || { echo "usage: $0 TASK|ALL [WORK_DIR]   (TASK: $ALL)" >&2; exit 2; }
[ "$TASK" = ALL ] && TASK=$ALL
[ -x "$PY" ] || { echo "prepare.sh: $PY not found; run 'make setup' first (or set PYTHON=...)" >&2; exit 1; }
for t in $TASK; do "$PY" -m lrdrop_cli.glue_text hparams "$t" > /dev/null || exit 2; done
mkdir -p "$WORK/gpt2" "$WORK/glue_data"

fetch() {  # URL FILE: download, or say what to put where
  curl -fsSL --retry 2 --connect-timeout 20 -o "$2" "$1" && return 0
  rm -f "$2"
  echo "prepare.sh: could not download $1 (no internet here?)." >&2
  echo "  Put the file at $2 yourself and rerun. Without the internet, 'make demo-classification'" >&2
  echo "  runs the same criterion on a built-in Debian corpus." >&2
  exit 1
}
for f in encoder.json vocab.bpe dict.txt; do
  [ -s "$WORK/gpt2/$f" ] || fetch "$GPT2_URL/$f" "$WORK/gpt2/$f"
done
for t in $TASK; do
  [ -d "$WORK/glue_data/$t" ] && continue
  [ -s "$WORK/download_glue_data.py" ] || fetch "$GLUE_SCRIPT_URL" "$WORK/download_glue_data.py"
  "$PY" "$WORK/download_glue_data.py" --data_dir "$WORK/glue_data" --tasks "$t" || {
    echo "prepare.sh: download_glue_data.py could not fetch $t; put its TSV files in $WORK/glue_data/$t/" >&2; exit 1; }
done

for t in $TASK; do
  eval "$("$PY" -m lrdrop_cli.glue_text hparams "$t")"  # NUM_CLASSES, INPUTS, ...
  TEXT="$WORK/$t-text"
  "$PY" -m lrdrop_cli.glue_text columns "$WORK/glue_data" "$t" "$TEXT"
  for raw in "$TEXT"/*.raw.input*; do
    out=${raw/.raw./.}
    [ -s "$out" ] && continue
    echo "[prepare] GPT-2 BPE $(basename "$raw")"
    "$PY" -m lrdrop_cli.cnndm_text bpe "$WORK/gpt2/encoder.json" "$WORK/gpt2/vocab.bpe" "$raw" "$out.tmp" \
      --workers "$WORKERS"
    mv "$out.tmp" "$out"
  done
  REGRESSION=()
  [ "$NUM_CLASSES" = 1 ] && REGRESSION=(--regression)
  rm -rf "$WORK/$t-bin"
  "$PY" -m lrdrop_cli.sentence_data "$TEXT" "$WORK/$t-bin" --srcdict "$WORK/gpt2/dict.txt" "${REGRESSION[@]}"
done
echo "[prepare] done: $(for t in $TASK; do printf '%s ' "$WORK/$t-bin"; done)"
