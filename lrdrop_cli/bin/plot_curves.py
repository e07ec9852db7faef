"""Plot fairseq training curves (``--log-format json`` logs) of one or more runs.

    lrdrop-plot NAME=train.log [NAME2=other.log ...] --out curves.png

One panel per quantity (train/valid loss and nll, the lr_drop consistency terms,
valid BLEU when logged), one line per run, over updates. Plain paths work
too (the run is then named after its folder).
"""

import argparse
import os
import sys

from lrdrop_cli import curves


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="NAME=LOG or LOG")
    ap.add_argument("--out", default="curves.png")
    a = ap.parse_args(argv)
    runs = []
    for spec in a.runs:
        name, path = (
            spec.split("=", 1) if "=" in spec else (os.path.basename(os.path.dirname(os.path.abspath(spec))), spec)
        )
        if not os.path.isfile(path):
            sys.exit(f"plot_curves: no such log file: {path}")
        runs.append((name, path))
    try:
        curves.plot(runs, a.out)
    except ValueError as e:
        sys.exit(f"plot_curves: {e}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
