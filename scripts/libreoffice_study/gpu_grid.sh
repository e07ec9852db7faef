#!/usr/bin/env bash
# Issue 28's grid on one lent GPU, one command of < 10 minutes: the GPU demo's model (3+3 x 256,
# fp16, lr 1e-3, 300 warm-up updates, 4,096 tokens) on the LibreOffice data, the same fixed budget
# for every configuration (linear decay to 0), seeds 1-3, all runs sharing the GPU at once:
#   dropout 0.3: baseline, R-Drop, LR-Drop (the paper's three terms, hidden weight 0.1, as the CPU
#   grid's lrdrop_h01), the same with attention weight 0.1 (lrdrop_a01, as the CPU grid's since the
#   attention screen of 2026-12-06), KL + attention  (15 runs)
#   dropout 0.1: baseline, and the baseline at R-Drop's compute (COMPUTE_RATIO x the budget)  (6 runs)
# Runs not finished when MINUTES is up are left out of the table. Writes into $OUT (default runs/gpu_grid):
# results.md / results.json (lrdrop-compare --report over every finished run), curves-d*.png,
# runs.tgz (each run's result.json, train.log and generate.log), grid.log.
# Prepare here first: bash scripts/libreoffice_study/gpu_bundle.sh (carry .gpu_bundle).
# UPDATES (1,800) is a guess from the earlier H100 timing (2,800 updates of this model in 6.4 min
# with 11 runs sharing the GPU): read each run's ups in runs.tgz before a second call.
# On CPU, as tests/tools/test_gpu_grid.py does: DEVICE=cpu MODEL=cpu DATA=... SEEDS=1 TRAIN_ARGS=... COMPARE_ARGS=...
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/gpu_grid}
DATA=${DATA:-.gpu_bundle/data}
UPDATES=${UPDATES:-1800}
COMPUTE_RATIO=${COMPUTE_RATIO:-2.6}  # R-Drop's cost in baseline updates, as measured on CPU (4.0 / 1.53)
MINUTES=${MINUTES:-8.5}
SEEDS=${SEEDS:-1,2,3}
DEVICE=${DEVICE:-cuda}
MODEL=${MODEL:-cuda}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/gpu_grid}
mkdir -p "$OUT" && exec > >(tee "$OUT/grid.log") 2>&1
if ! "$PY" -c "import fairseq" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .gpu_bundle/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
"$PY" -c "import torch, fairseq; print('torch', torch.__version__, 'fairseq', fairseq.__version__)" || exit 1
COMPUTE=$(awk -v u="$UPDATES" -v r="$COMPUTE_RATIO" 'BEGIN { printf "%d", u * r + 0.5 }')
VARIANT="base_compute=--mode baseline --max-update $COMPUTE"
A01="lrdrop_a01=--mode lrdrop --hidden-weight 0.1 --attn-weight 0.1"
C=(--data-bin "$DATA/data-bin" --raw "$DATA/corpus" --corpus-name libreoffice --device "$DEVICE" --model "$MODEL"
   --max-update "$UPDATES" --kl-weight 1 --hidden-weight 0.1 --attn-weight 1 --seeds "$SEEDS")
[ -n "${TRAIN_ARGS:-}" ] && C+=(--train-args "$TRAIN_ARGS")
read -ra extra <<< "${COMPARE_ARGS:-}" && C+=("${extra[@]}")  # e.g. "--lr 2e-3"
n_seeds=$(tr ',' '\n' <<< "$SEEDS" | wc -l)
echo "[gpu_grid] $(date +%H:%M:%S) $UPDATES updates (base_compute $COMPUTE), seeds $SEEDS, cap $MINUTES min"
timeout -k 20 "${MINUTES}m" "$PY" -m lrdrop_cli.bin.compare "${C[@]}" --out "$WORK/d0.3" \
  --configs baseline,rdrop,lrdrop,attn --variant "$A01" --dropouts 0.3 --parallel $(( 5 * n_seeds )) & pids=($!)
timeout -k 20 "${MINUTES}m" "$PY" -m lrdrop_cli.bin.compare "${C[@]}" --out "$WORK/d0.1" \
  --configs baseline --variant "$VARIANT" --dropouts 0.1 --parallel $(( 2 * n_seeds )) & pids+=($!)
wait "${pids[@]}"  # not a bare wait: bash would wait for the tee above too, which never ends
echo "[gpu_grid] $(date +%H:%M:%S) training done; the table of every finished run:"
mkdir -p "$WORK/all" && for d in "$WORK"/d0.*/*-s*/; do ln -sfn "$(cd "$d" && pwd)" "$WORK/all/$(basename "$d")"; done
"$PY" -m lrdrop_cli.bin.compare "${C[@]}" --out "$WORK/all" --configs baseline,rdrop,lrdrop,attn \
  --variant "$VARIANT" --variant "$A01" --dropouts 0.1,0.3 --report
cp "$WORK"/all/results.md "$WORK"/all/results.json "$WORK"/all/curves-d*.png "$OUT/" 2>/dev/null
(cd "$WORK/all" && tar czhf - */result.json */train.log */generate.log 2>/dev/null) > "$OUT/runs.tgz"
ls -la "$OUT"
