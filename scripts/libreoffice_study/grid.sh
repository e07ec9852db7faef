#!/usr/bin/env bash
# The LibreOffice study's scheduler (issue 28): runs the lines of $STUDY/$JOBS (default jobs),
#   NAME<TAB>CODE_DIR<TAB>lrdrop-compare arguments
# in order, $(cat $STUDY/slots) at a time (re-read before each start; default 1), each from the
# worktree CODE_DIR (PYTHONPATH) with one thread. A run with a $STUDY/$RUNS/NAME/result.json
# (RUNS: the jobs' --out, default grid) is skipped, an
# interrupted one resumes from its checkpoint (lrdrop-compare does that), a failed one is marked in
# $STUDY/failed/ and skipped until the marker is removed. make_jobs.sh writes the jobs.
#
#   STUDY=/work/study setsid nohup scripts/libreoffice_study/grid.sh > /work/study/grid.log 2>&1 &
set -u
VENV=${VENV:-$(cd "$(dirname "$0")/../.." && pwd)/.venv}
STUDY=${STUDY:-/work/study}
JOBS=${JOBS:-jobs}
RUNS=${RUNS:-grid}
cd "$STUDY"
mkdir -p logs failed
rm -rf started  # markers of a previous boot's jobs: those runs resume
declare -A running=()
while :; do
  for pid in "${!running[@]}"; do kill -0 "$pid" 2>/dev/null || unset "running[$pid]"; done
  slots=$(cat slots 2>/dev/null || echo 1)
  if (( ${#running[@]} < slots )); then
    while IFS=$'\t' read -r name code args; do
      [[ -z "$name" || "$name" == \#* ]] && continue
      [[ -f "$RUNS/$name/result.json" || -f "started/$name" || -f "failed/$name" ]] && continue
      mkdir -p started && touch "started/$name"
      echo "$(date +%H:%M) start $name ($code)"
      ( cd "$code" && PYTHONPATH="$code" OMP_NUM_THREADS=1 eval "$VENV/bin/python -m lrdrop_cli.bin.compare $args" \
          > "$STUDY/logs/$name.log" 2>&1; rc=$?
        echo "$(date +%H:%M) end $name rc=$rc"; (( rc == 0 )) || touch "$STUDY/failed/$name"
        rm -f "$STUDY/started/$name" ) &
      running[$!]=1
      break
    done < "$JOBS"
  fi
  sleep 20
done
