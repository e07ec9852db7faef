"""lrdrop-benchmark: see :mod:`lrdrop_cli.measure.benchmark`."""

import argparse

from lrdrop_cli.measure import benchmark


def build_parser():
    ap = argparse.ArgumentParser(description=benchmark.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="transformer_lrdrop_iwslt_de_en")
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument(
        "--shapes",
        default="64x32,16x128",
        help="comma list of SENTENCESxTOKENS per copy, or SENTENCESxSOURCE:TARGET (e.g. 1x1024:120)",
    )
    ap.add_argument(
        "--modes", default="baseline,rdrop,hidden,attn,lrdrop", help=f"comma list of {', '.join(benchmark.MODES)}"
    )
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--gen-shape", default="64x24", help="sentences x source tokens for beam search ('' skips)")
    ap.add_argument("--gen-reps", type=int, default=4, help="timed beam-search runs per model")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument(
        "--fp16",
        action="store_true",
        help="model and batch in half precision with torch's Adam: the kernels' cost, NOT fairseq-train --fp16 "
        "(no FP16Optimizer, fp32 master weights or loss scaling); time fairseq-train --fp16 itself for that",
    )
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument(
        "--attn-small-map",
        type=int,
        help="lr_drop's --attn-small-map for the layer-term modes: 0 recomputes every self-attention map, a huge "
        "value records every one from fairseq's explicit path (default: lr_drop's own, 2^22)",
    )
    ap.add_argument(
        "--attn-recompute-in-backward",
        action="store_true",
        help="lr_drop's --attn-recompute-in-backward for the layer-term modes: recomputed maps again in the backward",
    )
    ap.add_argument("--json", help="write all results here")
    return ap


def main(argv=None):
    benchmark.run_benchmark(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
