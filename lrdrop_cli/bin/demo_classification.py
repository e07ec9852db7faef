"""lrdrop-demo-classification: see :mod:`lrdrop_cli.pipelines.classification`."""

import argparse
import os

from lrdrop_cli import modes, steps
from lrdrop_cli.pipelines import classification


def build_parser():
    ap = argparse.ArgumentParser(
        description=classification.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=os.path.join("runs", "demo-classification"))
    ap.add_argument("--modes", default="baseline,lrdrop", help=f"comma-separated, from {', '.join(modes.MODES)}")
    ap.add_argument("--seeds", default="1", help="comma-separated training seeds (default 1)")
    ap.add_argument("--updates", type=int, default=1200, help="training updates per run (default 1200)")
    ap.add_argument("--minutes", type=float, default=None, help="stop each run after this many minutes")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--input", help="your own texts, one per line (untokenised)")
    ap.add_argument("--labels", help="their labels, one per line, aligned with --input")
    ap.add_argument("--vocab", type=int, default=4000, help="sentencepiece vocabulary size")
    ap.add_argument("--valid-size", type=int, default=600)
    ap.add_argument("--test-size", type=int, default=1200)
    ap.add_argument("--max-positions", type=int, default=128, help="inputs are truncated to this many tokens")
    ap.add_argument("--data-seed", type=int, default=1, help="seed of the train/valid/test split")
    ap.add_argument("--train-args", default="", help="extra fairseq-train arguments, appended last")
    steps.add_training_args(ap)
    ap.set_defaults(kl_weight=1.0, dropout=0.1, lr=1e-3, warmup=100, max_tokens=4096)
    return ap


def main(argv=None):
    classification.run_demo(steps.parse_args(build_parser(), argv))


if __name__ == "__main__":
    main()
