#!/usr/bin/env bash
# The attention-weight screen of 2026-12-06 (docs/results.md section 0): LR-Drop (the paper's three
# terms, hidden weight 0.1) at attention weight 0.1 and 0.03, dropout 0.1, seed 1, on the grid's
# 8,000-update schedule stopped at update 1,200 (--train-args overrides --max-update, not the decay's
# --total-num-update), from the LR-Drop runs' worktree; then lrdrop-diagnose on each checkpoint.
# Every weight-1 run's attention term sat near 0.02 from update 100 on (its attention never formed),
# so 1,200 updates show whether a weight lets it form. ~40 min each on half a core.
#   STUDY=/work/study bash scripts/libreoffice_study/screen_attn.sh
set -eu
STUDY=${STUDY:-/work/study}
VENV=${VENV:-$(cd "$(dirname "$0")/../.." && pwd)/.venv}
B=$STUDY/code-b1fd0aa
cd "$B"
PYTHONPATH=$B OMP_NUM_THREADS=1 "$VENV/bin/python" -m lrdrop_cli.bin.compare \
  --out "$STUDY/screen" --data-bin "$STUDY/lo/data-bin" --raw "$STUDY/lo/corpus" --corpus-name libreoffice \
  --max-update 8000 --kl-weight 1 --hidden-weight 1 --attn-weight 1 --lr 3e-3 --warmup 150 --max-tokens 1536 \
  --parallel 2 --configs '' --dropouts 0.1 --seeds 1 --train-args "--max-update 1200" \
  --variant 'a01=--mode lrdrop --hidden-weight 0.1 --attn-weight 0.1' \
  --variant 'a003=--mode lrdrop --hidden-weight 0.1 --attn-weight 0.03'
for r in a01 a003; do
  OMP_NUM_THREADS=1 "$VENV/bin/lrdrop-diagnose" "$STUDY/screen/$r-d0.1-s1/checkpoints/checkpoint_best.pt" \
    --data-bin "$STUDY/lo/data-bin" --batches 4 --json "$STUDY/screen/diagnose_$r.json"
done
