#!/usr/bin/env bash
# The prepared GPU check of issue 29, one command of < 10 minutes on one GPU (set-up included when
# the venv is carried): the three attention paths (fused = R-Drop, explicit = maps recorded,
# recompute = maps recomputed in blocks) at IWSLT shapes and at 1,024 source tokens, fp16 and fp32,
# time and peak memory (torch.cuda.max_memory_allocated); then the recompute path's fp16 gradient
# against fp32 on the GPU. Writes OUT (default $OUT or runs/gpu_check) /*.json and prints the tables.
#
#   bash scripts/gpu_check.sh [OUT]
#
# Not run yet: no GPU has been lent to this project since it was written (docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-runs/gpu_check}}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
B=("$PY" -m lrdrop_cli.bin.benchmark --device cuda --steps 10 --warmup 3 --gen-shape '')
for prec in fp16 fp32; do
  P=(); [ $prec = fp16 ] && P=(--fp16)
  # IWSLT shapes: maps small, the explicit path records them (default); --attn-small-map 0 recomputes
  "${B[@]}" "${P[@]}" --arch transformer_lrdrop_iwslt_de_en --shapes 64x32,16x128,128x64 \
      --modes baseline,rdrop,attn,lrdrop --json "$OUT/iwslt-explicit-$prec.json"
  "${B[@]}" "${P[@]}" --arch transformer_lrdrop_iwslt_de_en --shapes 64x32,16x128,128x64 \
      --modes attn,lrdrop --attn-small-map 0 --json "$OUT/iwslt-recompute-$prec.json"
  # 1,024 source tokens: recomputed by default; 2^40 records every map from the explicit path
  "${B[@]}" "${P[@]}" --arch bart_lrdrop_base --shapes 4x1024:120 --dropout 0.1 \
      --modes rdrop,attn,lrdrop --json "$OUT/bart-recompute-$prec.json"
  "${B[@]}" "${P[@]}" --arch bart_lrdrop_base --shapes 4x1024:120 --dropout 0.1 \
      --modes attn,lrdrop --attn-small-map 1099511627776 --json "$OUT/bart-explicit-$prec.json"
done
# the recompute path's gradient in fp16 against fp32, on the GPU (tests/unit/test_consistency.py on CPU)
"$PY" - <<'PYEOF' | tee "$OUT/fp16_gradient.txt"
import dataclasses, torch
from lrdrop import consistency as C
from lrdrop.records import AttentionInputs
g = torch.Generator(device="cuda").manual_seed(3)
for noise in (3e-4, 3e-3, 3e-2):
    half = torch.randn(256, 8, 512, device="cuda", generator=g)
    query = torch.cat([half, half + noise * torch.randn(256, 8, 512, device="cuda", generator=g)], 1)
    ws = [torch.randn(512, 512, device="cuda", generator=g) / 512**0.5 for _ in range(2)]
    grads, terms = {}, {}
    for dtype in (torch.float32, torch.float16):
        leaf = lambda t: t.half().to(dtype).requires_grad_(True)
        q, wq, wk = leaf(query), leaf(ws[0]), leaf(ws[1])
        rec = AttentionInputs(query=q, key=q, q_weight=wq, k_weight=wk, q_bias=None, k_bias=None, num_heads=8,
                              scaling=64 ** -0.5)
        term = C.recomputed_attention_consistency(rec, None, "kl", block=32)
        (term * 2.0**12).backward()
        terms[dtype], grads[dtype] = term.item(), wq.grad.float() / 2.0**12
    err = ((grads[torch.float16] - grads[torch.float32]).norm() / grads[torch.float32].norm()).item()
    print(f"noise {noise:g}: mean KL per query and head {terms[torch.float32] / (256 * 8 * 8):.2e}, "
          f"q_proj gradient relative error fp16 vs fp32 {err:.3%}")
PYEOF
echo "[gpu_check] done: $OUT"
