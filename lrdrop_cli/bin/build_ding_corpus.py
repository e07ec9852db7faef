"""lrdrop-build-ding-corpus: see :mod:`lrdrop_cli.corpora.ding`."""

import argparse
import sys

from lrdrop_cli.corpora import ding


def main(argv=None):
    ap = argparse.ArgumentParser(description=ding.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--dict", help="path to the Ding de-en file (default: fetch Debian's trans-de-en)")
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-words", type=int, help="keep pairs with at most this many words per side")
    ap.add_argument("--phrases", type=int, default=0, help="add this many dictionary word/phrase pairs to train")
    ap.add_argument(
        "--train-max-words",
        type=int,
        help="train also on sentences of up to this many words (valid/test keep --max-words)",
    )
    a = ap.parse_args(argv)
    try:
        sizes = ding.build(a.out_dir, a.dict, a.valid, a.test, a.seed, a.max_words, a.phrases, a.train_max_words)
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"build_ding_corpus: {e}")
    print(f"wrote {a.out_dir}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
