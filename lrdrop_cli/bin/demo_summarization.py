"""lrdrop-demo-summarization: see :mod:`lrdrop_cli.pipelines.summarization`."""

import argparse
import os

from lrdrop_cli import steps
from lrdrop_cli.pipelines import summarization


def build_parser():
    ap = argparse.ArgumentParser(
        description=summarization.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--out",
        default=os.path.join("runs", "demo-summarization"),
        help="output folder (default runs/demo-summarization)",
    )
    ap.add_argument(
        "--updates",
        type=int,
        default=1000,
        help="training updates; the learning rate decays linearly to 0 over them (default 1000)",
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        help="stop training after this many minutes even if --updates are not done (default 20)",
    )
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--source", help="your own documents, one per line")
    ap.add_argument("--target", help="your own summaries, one per line, aligned with --source")
    ap.add_argument("--index", help="an uncompressed Debian Translation-en file instead of fetching it")
    ap.add_argument("--vocab", type=int, default=4000, help="joint sentencepiece vocabulary size")
    ap.add_argument("--valid-size", type=int, default=500)
    ap.add_argument("--test-size", type=int, default=500)
    ap.add_argument(
        "--max-source-tokens",
        type=int,
        default=96,
        help="--truncate-source keeps this many source BPE tokens (default 96)",
    )
    steps.add_training_args(ap)
    ap.set_defaults(dropout=0.1, lr=1e-3, warmup=200, max_tokens=3072)  # on either device
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-args", default="", help="extra fairseq-train arguments, appended last")
    return ap


def main(argv=None):
    summarization.run_demo(steps.parse_args(build_parser(), argv))


if __name__ == "__main__":
    main()
