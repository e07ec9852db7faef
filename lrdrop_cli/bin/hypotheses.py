"""lrdrop-hypotheses: a fairseq-generate log's hypotheses, one a line, in corpus order."""

import argparse
import sys

from lrdrop_cli import fairseq_io


def main(argv=None):
    """``lrdrop-hypotheses GENERATE_LOG [--expect N]``: the hypotheses, one a line, in corpus order."""
    ap = argparse.ArgumentParser(prog="lrdrop-hypotheses", description=main.__doc__)
    ap.add_argument("generate_log")
    ap.add_argument("--expect", type=int, help="fail unless there are exactly this many sentences")
    a = ap.parse_args(argv)
    try:
        hyps = fairseq_io.read_hypotheses(a.generate_log, a.expect)
    except (OSError, ValueError) as e:
        sys.exit(f"lrdrop-hypotheses: {e}")
    sys.stdout.writelines(h + "\n" for h in hyps)


if __name__ == "__main__":
    main()
