#!/usr/bin/env bash
# Issue 44's screen, before the long comparison: where today's layer terms fail, do the scale-blind
# distances keep the attention and the FFN outputs? LibreOffice, the grid's model and 8,000-update
# schedule stopped at update 1,500 (--train-args overrides --max-update, not the decay's
# --total-num-update), seed 1, both dropouts, every layer weight 1 (KL 1, hidden 1, attention 1):
#   rdrop   R-Drop, the reference the figures are judged against
#   lrdrop  today's terms (FFN-output MSE, attention KL): the reference that collapses
#   corr    today's hidden MSE, the attention by the scores' correlation (--attn-loss corr)
#   sb      both scale-blind: hidden rel_mse, attention corr (mode lrdrop_sb)
#   sbv     attention corr, hidden rel_var (added 2026-12-07 after sb-d0.3 grew its FFN outputs 8x:
#           rel_mse is met by growing what the copies share; rel_var is blind to it), from commit V
#   wu      today's terms, every weight ramped from 0 over 1,000 updates
#   attn_corr  the output KL and attention corr, no hidden term (does corr alone grow the FFN outputs?)
#   sbv_wu  attention corr, hidden rel_var, ramped over 1,000 updates (the best scale-blind pair so far;
#           was lrdrop_sb, ramped, before sbv)
# Writes $STUDY/screen_jobs for grid.sh and the worktree of the commit that runs it; then
#   STUDY=/work/study JOBS=screen_jobs RUNS=screen setsid nohup scripts/libreoffice_study/grid.sh \
#       > /work/study/screen.log 2>&1 &
# and, per finished run, lrdrop-diagnose on its checkpoint_last.pt (the stop):
#   lrdrop-diagnose /work/study/screen/NAME/checkpoints/checkpoint_last.pt --data-bin /work/study/lo/data-bin \
#       --batches 4 --json ...
set -eu
STUDY=${STUDY:-/work/study}
COMMIT=${COMMIT:-a1f91eb}
V=${V:-0afc9be}  # the commit with --hidden-loss rel_var
S=$STUDY/code-$COMMIT
SV=$STUDY/code-$V
[ -d "$S" ] || git worktree add -f "$S" "$COMMIT"
[ -d "$SV" ] || git worktree add -f "$SV" "$V"
C="--out $STUDY/screen --data-bin $STUDY/lo/data-bin --raw $STUDY/lo/corpus --corpus-name libreoffice --max-update 8000"
C="$C --kl-weight 1 --hidden-weight 1 --attn-weight 1 --lr 3e-3 --warmup 150 --max-tokens 1536 --parallel 2"
C="$C --seeds 1 --train-args '--max-update 1500'"
VARIANTS=(
  "corr=--mode lrdrop --attn-loss corr"
  "sb=--mode lrdrop_sb"
  "wu=--mode lrdrop --consistency-warmup-updates 1000"
  "sbv=--mode lrdrop_sb --hidden-loss rel_var"
  "sbv_wu=--mode lrdrop_sb --hidden-loss rel_var --consistency-warmup-updates 1000"
)
line() {  # NAME DROPOUT CODE CONFIG-ARGS
  printf "%s-d%s-s1\t%s\t%s --dropouts %s %s\n" "$1" "$2" "$3" "$C" "$2" "$4"
}
variant() {  # NAME DROPOUT CODE: the variant NAME of VARIANTS
  local v
  for v in "${VARIANTS[@]}"; do
    if [[ "$v" == "$1="* ]]; then line "$1" "$2" "$3" "--configs '' --variant '$v'"; fi
  done
}
# the order as it ran: sb and rdrop at 0.3 first, then lrdrop and corr; sbv joined after sb's result
{
  echo "# NAME<TAB>CODE<TAB>lrdrop-compare args (grid.sh reads this before each start)"
  variant sb 0.3 "$S"
  line rdrop 0.3 "$S" "--configs rdrop"
  line lrdrop 0.3 "$S" "--configs lrdrop"
  variant corr 0.3 "$S"
  variant sbv 0.3 "$SV"
  # added 08:30: sbv's FFN outputs grew too (RMS 8.3 at update 600, sb's 10.0, R-Drop's end 1.9):
  # the output KL and the attention corr alone, no hidden term, shows whether corr drives the growth
  line attn_corr 0.3 "$S" "--configs attn_corr"
  line rdrop 0.1 "$S" "--configs rdrop"
  variant sbv 0.1 "$SV"
  variant corr 0.1 "$S"
  line lrdrop 0.1 "$S" "--configs lrdrop"
  variant sb 0.1 "$S"
  variant sbv_wu 0.3 "$SV"
  variant wu 0.3 "$S"
  variant sbv_wu 0.1 "$SV"
  variant wu 0.1 "$S"
} > "$STUDY/screen_jobs"
cat "$STUDY/screen_jobs"
