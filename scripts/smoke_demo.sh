#!/usr/bin/env bash
# Smoke run of the whole pipeline on a generated toy corpus, in about a minute
# on 2 CPU cores: make data -> fairseq-preprocess -> fairseq-train with lr_drop
# -> fairseq-generate. Usage: scripts/smoke_demo.sh [OUT_DIR] [MAX_UPDATE]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/runs/smoke}
MAX_UPDATE=${2:-300}
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "scripts/smoke_demo.sh: no Python at $PY; run 'make setup' first (or set PYTHON=/path/to/python)" >&2; exit 1; }
BIN=$(dirname "$PY")
USER_DIR=$("$PY" -c 'from lrdrop_cli.fairseq_io import USER_DIR; print(USER_DIR)')  # the installed plugin
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

step() { echo; echo "=== [smoke] $*"; }
fail() { echo "[smoke] FAILED at step: $1 (see output above)" >&2; exit 1; }

step "1/4 toy corpus -> $OUT/raw"
[ -f "$OUT/raw/train.src" ] || "$BIN/lrdrop-make-toy-corpus" "$OUT/raw" || fail corpus
step "2/4 fairseq-preprocess -> $OUT/bin"
[ -f "$OUT/bin/dict.src.txt" ] || "$BIN/fairseq-preprocess" --source-lang src --target-lang tgt \
  --trainpref "$OUT/raw/train" --validpref "$OUT/raw/valid" --testpref "$OUT/raw/test" \
  --destdir "$OUT/bin" --workers 1 >"$OUT/preprocess.log" 2>&1 || fail preprocess
step "3/4 fairseq-train --criterion lr_drop ($MAX_UPDATE updates)"
"$BIN/fairseq-train" "$OUT/bin" --user-dir "$USER_DIR" \
  --arch transformer_lrdrop_tiny --encoder-embed-dim 64 --decoder-embed-dim 64 \
  --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 --encoder-layers 2 --decoder-layers 2 \
  --criterion lr_drop --label-smoothing 0.1 --kl-weight 1 --hidden-weight 1 --attn-weight 1 \
  --dropout 0.1 --attention-dropout 0.1 --optimizer adam --adam-betas '(0.9,0.98)' --lr 3e-3 \
  --lr-scheduler inverse_sqrt --warmup-updates 50 --max-tokens 2000 --max-update "$MAX_UPDATE" \
  --save-dir "$OUT/checkpoints" --no-epoch-checkpoints --cpu --seed 1 --num-workers 0 \
  --log-format json --log-interval 25 --log-file "$OUT/train.log" || fail train
step "4/4 fairseq-generate (beam 5) on test"
"$BIN/fairseq-generate" "$OUT/bin" --user-dir "$USER_DIR" --path "$OUT/checkpoints/checkpoint_best.pt" \
  --gen-subset test --beam 5 --cpu --max-sentences 100 >"$OUT/generate.txt" 2>&1 || fail generate
grep '^S-\|^T-\|^H-' "$OUT/generate.txt" | sort -t- -k2,2n -s | head -9
tail -1 "$OUT/generate.txt"
echo; echo "[smoke] done; everything is under $OUT"
