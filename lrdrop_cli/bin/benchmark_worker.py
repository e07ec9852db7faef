"""One measurement of lrdrop-benchmark in a fresh process (spawned by it, not a console
command): prints its result as one JSON line."""

import argparse
import json

from lrdrop_cli.measure import benchmark


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("kind", choices=("train", "generate"))
    ap.add_argument("--mode", help="train: one of lrdrop-benchmark's modes")
    ap.add_argument("--shape", help="train: SENTENCESxTOKENS or SENTENCESxSOURCE:TARGET")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--dropout", type=float, required=True)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--gen-shape", default="64x24")
    ap.add_argument("--gen-reps", type=int, default=4)
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--attn-small-map", type=int)
    ap.add_argument("--attn-recompute-in-backward", action="store_true")
    a = ap.parse_args(argv)
    worker = benchmark.train_worker if a.kind == "train" else benchmark.generate_worker
    print(json.dumps(worker(a)))


if __name__ == "__main__":
    main()
