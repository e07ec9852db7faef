"""lrdrop-compare: see :mod:`lrdrop_cli.pipelines.comparison`."""

import argparse
import os

from lrdrop_cli import modes, steps
from lrdrop_cli.pipelines import comparison


def build_parser():
    ap = argparse.ArgumentParser(description=comparison.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join("runs", "compare"))
    ap.add_argument("--data-bin", help="binarized data (default: the demo's, built if missing)")
    ap.add_argument("--raw", help="folder with test.SRC / test.TGT references (default: next to --data-bin)")
    ap.add_argument("--corpus-name", help="name of the corpus in the results (default: the --raw folder's parent)")
    ap.add_argument("--source-lang", default="de")
    ap.add_argument("--target-lang", default="en")
    ap.add_argument("--configs", default=",".join(modes.MODES), help=f"modes to run, from {', '.join(modes.MODES)}")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FLAGS",
        help="an extra configuration: R-Drop plus these lr_drop flags (repeatable); in FLAGS, '--mode MODE' "
        "extends another mode and '--max-update N' gives it its own budget, e.g. a baseline at R-Drop's "
        'compute: base_long="--mode baseline --max-update 21000"',
    )
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--dropouts", help="comma-separated dropout values, each a full set of runs (default: --dropout)")
    ap.add_argument(
        "--max-update",
        type=int,
        default=2800,
        help="updates per run; with --patience, a cap "
        "(without: the learning rate decays linearly to 0 over them, as in the demo)",
    )
    ap.add_argument(
        "--patience",
        type=int,
        help="train each run until validation perplexity has not improved for this many validations in a row",
    )
    ap.add_argument(
        "--keep-checkpoints",
        type=int,
        default=1,
        help="with --patience: epoch checkpoints kept per run (for lrdrop-diagnose over training)",
    )
    ap.add_argument(
        "--report",
        action="store_true",
        help="write the table of the runs finished so far and train nothing (e.g. while they run elsewhere)",
    )
    ap.add_argument(
        "--parallel",
        type=int,
        default=2,
        help="runs at a time; each gets cores/parallel "
        "threads (on 2 cores, 2 one-thread runs beat one two-thread run by ~1.2x)",
    )
    steps.add_training_args(ap)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument(
        "--model",
        choices=("cpu", "cuda"),
        help="train the CPU or the GPU demo's model and defaults "
        "(default: --device's); --device cuda --model cpu runs the CPU demo's model on a GPU",
    )
    ap.add_argument("--train-args", default="", help="extra fairseq-train arguments, appended last")
    return ap


def main(argv=None):
    comparison.run_comparison(steps.parse_args(build_parser(), argv))


if __name__ == "__main__":
    main()
