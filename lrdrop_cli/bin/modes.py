"""lrdrop-modes: see :mod:`lrdrop_cli.modes`."""

import argparse
import sys

from lrdrop_cli import modes


def main(argv=None):
    ap = argparse.ArgumentParser(description=modes.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode")
    ap.add_argument("--kl-weight", type=float, default=5.0)
    ap.add_argument(
        "--hidden-weight",
        type=float,
        help="when the mode has the term (default: "
        + ", ".join(f"{w:g} at the {site} site" for site, w in modes.DEFAULT_WEIGHTS["hidden"].items())
        + ")",
    )
    ap.add_argument(
        "--attn-weight", type=float, help=f"when the mode has the term (default {modes.DEFAULT_WEIGHTS['attn']:g})"
    )
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--task", default="translation", help=f"one of {', '.join(modes.TASKS)} (default translation)")
    ap.add_argument("--regression", action="store_true", help="sentence_prediction with a regression head")
    a = ap.parse_args(argv)
    try:
        flags = modes.criterion_flags(
            a.mode, a.kl_weight, a.hidden_weight, a.attn_weight, a.label_smoothing, a.task, a.regression
        )
        print(" ".join(flags))
    except ValueError as e:
        sys.exit(f"lrdrop-modes: {e}")


if __name__ == "__main__":
    main()
