#!/usr/bin/env bash
# Issue 44's comparison (part 4), after the screen (make_screen_jobs.sh, docs/results.md section 00):
# the formulation that kept its attention at weight 1, LR-Drop's three terms with the FFN-output MSE
# and the attention by the scores' correlation (mode lrdrop_corr), with every weight 1 (KL 1,
# hidden 1, attention 1: not weighted down), on section 0's protocol (LibreOffice, 2+2 x 128, 8,000
# updates, linear decay to 0 after 150 warm-up updates), both dropouts, seeds 1-3, paired against
# section 0's R-Drop runs of the same seed and dropout. First R-Drop at dropout 0.1, seed 1 again
# (rdrop_rerun) on this code and machine: if it is not within 0.02 bits of section 0's run, R-Drop's
# seeds run again too.
#
# Writes $STUDY/compare_jobs and the worktree of the commit that runs it; the runs go to $STUDY/grid
# beside section 0's (report.py merges them into docs/libreoffice_results.json), so first
#   STUDY=/work/study .venv/bin/python scripts/libreoffice_study/report.py --restore
# (section 0's finished runs' result.json back from the JSON, so that nothing reruns), then
#   STUDY=/work/study JOBS=compare_jobs setsid nohup scripts/libreoffice_study/grid.sh > /work/study/compare.log 2>&1 &
# and after each finished run
#   STUDY=/work/study JOBS=compare_jobs .venv/bin/python scripts/libreoffice_study/report.py   # then commit
set -eu
STUDY=${STUDY:-/work/study}
COMMIT=${COMMIT:-5cc9050}  # the commit with mode lrdrop_corr
S=$STUDY/code-$COMMIT
[ -d "$S" ] || git worktree add -f "$S" "$COMMIT"
C="--out $STUDY/grid --data-bin $STUDY/lo/data-bin --raw $STUDY/lo/corpus --corpus-name libreoffice --max-update 8000"
C="$C --kl-weight 1 --hidden-weight 1 --attn-weight 1 --lr 3e-3 --warmup 150 --max-tokens 1536 --parallel 2"
{
  echo "# NAME<TAB>CODE<TAB>lrdrop-compare args (grid.sh reads this before each start)"
  printf "rdrop_rerun-d0.1-s1\t$S\t$C --configs '' --dropouts 0.1 --seeds 1 --variant 'rdrop_rerun=--mode rdrop'\n"
  for seed in 1 2 3; do
    for d in 0.1 0.3; do
      printf "lrdrop_corr-d$d-s$seed\t$S\t$C --configs lrdrop_corr --dropouts $d --seeds $seed\n"
    done
  done
} > "$STUDY/compare_jobs"
echo "wrote $STUDY/compare_jobs ($(grep -vc '^#' "$STUDY/compare_jobs") runs) with code $S"
