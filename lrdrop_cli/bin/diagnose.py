"""lrdrop-diagnose: see :mod:`lrdrop_cli.measure.diagnose`."""

import argparse

from lrdrop_cli.measure import diagnose


def build_parser():
    ap = argparse.ArgumentParser(description=diagnose.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data-bin", required=True)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=1536)
    ap.add_argument("--json", help="write the rows here")
    return ap


def main(argv=None):
    diagnose.run_diagnose(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
