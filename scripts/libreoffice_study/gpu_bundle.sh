#!/usr/bin/env bash
# Packs, on this machine, what gpu_grid.sh needs on a lent GPU machine into .gpu_bundle/ (ignored by
# git, ~30 MB): cp312 wheels of fairseq-fixed and of the packages the GPU image lacks (it has torch,
# sacrebleu, sentencepiece, matplotlib, scikit-learn; fairseq, hydra and omegaconf it has not), and
# the study's binarized data with its test references. Then, with the device tool:
#   run(command="bash scripts/libreoffice_study/gpu_grid.sh", carry=[".gpu_bundle"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/../.."
STUDY=${STUDY:-/work/study}
B=.gpu_bundle
PIP=${PIP:-.venv/bin/pip}
[ -f "$STUDY/lo/data-bin/dict.de.txt" ] || { echo "no $STUDY/lo/data-bin: build the data first (docs/results.md section 0)"; exit 1; }
rm -rf "$B" && mkdir -p "$B/whl" "$B/data/corpus"
"$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$B/whl" \
  fairseq-fixed==0.12.3.1 hydra-core==1.3.2 omegaconf==2.3.0 bitarray==3.12.3 sacremoses==0.2.0
"$PIP" wheel -q --no-deps -w "$B/whl" antlr4-python3-runtime==4.9.3  # a source release only: built here (pure Python)
cp -r "$STUDY/lo/data-bin" "$B/data/"
cp "$STUDY/lo/corpus/test.de" "$STUDY/lo/corpus/test.en" "$B/data/corpus/"
du -sh "$B"; ls "$B/whl"
