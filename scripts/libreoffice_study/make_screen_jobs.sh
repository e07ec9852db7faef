#!/usr/bin/env bash
# Issue 44's screen, before the long comparison: where today's layer terms fail, do the scale-blind
# distances keep the attention and the FFN outputs? LibreOffice, the grid's model and 8,000-update
# schedule stopped at update 1,500 (--train-args overrides --max-update, not the decay's
# --total-num-update), seed 1, both dropouts, every layer weight 1 (KL 1, hidden 1, attention 1):
#   rdrop   R-Drop, the reference the figures are judged against
#   lrdrop  today's terms (FFN-output MSE, attention KL): the reference that collapses
#   corr    today's hidden MSE, the attention by the scores' correlation (--attn-loss corr)
#   sb      both scale-blind: hidden rel_mse, attention corr (mode lrdrop_sb)
#   wu      today's terms, every weight ramped from 0 over 1,000 updates
#   sb_wu   both scale-blind, ramped over 1,000 updates
# Writes $STUDY/screen_jobs for grid.sh and the worktree of the commit that runs it; then
#   STUDY=/work/study JOBS=screen_jobs RUNS=screen setsid nohup scripts/libreoffice_study/grid.sh \
#       > /work/study/screen.log 2>&1 &
# and, per finished run, lrdrop-diagnose on its checkpoint_last.pt (the stop):
#   lrdrop-diagnose /work/study/screen/NAME/checkpoints/checkpoint_last.pt --data-bin /work/study/lo/data-bin \
#       --batches 4 --json ...
set -eu
STUDY=${STUDY:-/work/study}
COMMIT=${COMMIT:-a1f91eb}
S=$STUDY/code-$COMMIT
[ -d "$S" ] || git worktree add -f "$S" "$COMMIT"
C="--out $STUDY/screen --data-bin $STUDY/lo/data-bin --raw $STUDY/lo/corpus --corpus-name libreoffice --max-update 8000"
C="$C --kl-weight 1 --hidden-weight 1 --attn-weight 1 --lr 3e-3 --warmup 150 --max-tokens 1536 --parallel 2"
C="$C --seeds 1 --train-args '--max-update 1500'"
V=(
  "corr=--mode lrdrop --attn-loss corr"
  "sb=--mode lrdrop_sb"
  "wu=--mode lrdrop --consistency-warmup-updates 1000"
  "sb_wu=--mode lrdrop_sb --consistency-warmup-updates 1000"
)
line() {  # NAME DROPOUT CONFIG-ARGS
  printf "%s-d%s-s1\t%s\t%s --dropouts %s %s\n" "$1" "$2" "$S" "$C" "$2" "$3"
}
{
  echo "# NAME<TAB>CODE<TAB>lrdrop-compare args (grid.sh reads this before each start)"
  for d in 0.3 0.1; do
    line sb "$d" "--configs '' --variant '${V[1]}'"
    line rdrop "$d" "--configs rdrop"
    line lrdrop "$d" "--configs lrdrop"
    line corr "$d" "--configs '' --variant '${V[0]}'"
  done
  for d in 0.3 0.1; do
    line sb_wu "$d" "--configs '' --variant '${V[3]}'"
    line wu "$d" "--configs '' --variant '${V[2]}'"
  done
} > "$STUDY/screen_jobs"
cat "$STUDY/screen_jobs"
