"""lrdrop-build-debian-summaries: see :mod:`lrdrop_cli.corpora.debian_summaries`."""

import argparse
import sys

from lrdrop_cli.corpora import debian_summaries


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=debian_summaries.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out_dir")
    ap.add_argument("--index", help="an uncompressed Debian Translation-en file (default: fetch with apt-get)")
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-words", type=int, default=15, help="drop shorter descriptions")
    a = ap.parse_args(argv)
    try:
        sizes = debian_summaries.build(a.out_dir, a.index, a.valid, a.test, a.seed, a.min_words)
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"build_debian_summaries: {e}")
    print(f"wrote {a.out_dir}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
