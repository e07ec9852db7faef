"""lrdrop-make-toy-corpus: see :mod:`lrdrop_cli.corpora.toy`."""

import argparse

from lrdrop_cli.corpora import toy


def main(argv=None):
    ap = argparse.ArgumentParser(description=toy.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--valid", type=int, default=100)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--classification", action="store_true", help="a sentence-prediction corpus (see above)")
    a = ap.parse_args(argv)
    write = toy.write_classification_corpus if a.classification else toy.write_corpus
    write(a.out_dir, (("train", a.train), ("valid", a.valid), ("test", a.test)), a.vocab, seed=a.seed)
    print(f"wrote toy corpus to {a.out_dir}")


if __name__ == "__main__":
    main()
