"""lrdrop-demo: see :mod:`lrdrop_cli.pipelines.translation`."""

import argparse
import os

from lrdrop_cli import steps
from lrdrop_cli.pipelines import translation


def build_parser():
    ap = argparse.ArgumentParser(description=translation.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder (default runs/demo)")
    ap.add_argument(
        "--updates",
        type=int,
        help="training updates; the learning rate decays linearly to 0 over them (default: the corpus's, "
        + ", ".join(f"{c} {d['updates']}" for c, d in translation.CORPUS_DEFAULTS.items())
        + "; LibreOffice's about 25 minutes on 2 CPU cores, where the --minutes cap stops them near 2,250)",
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=25.0,
        help="stop training after this many minutes even if --updates are not done, on a slower machine (default 25)",
    )
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--source", help="your own source-language corpus, one sentence per line (UTF-8)")
    ap.add_argument("--target", help="your own target-language corpus, aligned with --source")
    # the spellings before both demos shared --source/--target
    ap.add_argument("--src", dest="source", help=argparse.SUPPRESS)
    ap.add_argument("--tgt", dest="target", help=argparse.SUPPRESS)
    ap.add_argument("--source-lang", default="de", help="language code of --source (default de)")
    ap.add_argument("--target-lang", default="en", help="language code of --target (default en)")
    ap.add_argument(
        "--corpus",
        choices=translation.CORPORA,
        default="libreoffice",
        help="the built-in German-English corpus: libreoffice (LibreOffice's interface and help, "
        "lrdrop-build-libreoffice-corpus; the default), ding (Ding dictionary sentences) or both (each split "
        "the union of the two)",
    )
    ap.add_argument("--ding", help="path to a Ding de-en dictionary file instead of Debian's package")
    ap.add_argument(
        "--max-words",
        type=int,
        default=10,
        help="Ding corpus: keep sentences of at most this many words per side (short sentences learn faster on CPU)",
    )
    ap.add_argument(
        "--train-max-words",
        type=int,
        help="Ding corpus: train also on sentences of up to this many words (valid/test keep --max-words)",
    )
    ap.add_argument(
        "--phrases",
        type=int,
        default=0,
        help="Ding corpus: add this many dictionary "
        "word/phrase pairs to train (lexical data; valid/test stay sentences)",
    )
    ap.add_argument("--vocab", type=int, default=4000, help="joint sentencepiece vocabulary size")
    ap.add_argument(
        "--lenpen",
        type=float,
        help="beam search's length penalty on test (fairseq-generate --lenpen; above 1 favours longer "
        "translations; default: the corpus's, chosen on its validation set: libreoffice 1.5, otherwise 1)",
    )
    ap.add_argument("--valid-size", type=int, help="default: the corpus's (libreoffice 1000, otherwise 500)")
    ap.add_argument("--test-size", type=int, help="default: the corpus's (libreoffice 1500, otherwise 1000)")
    steps.add_training_args(ap)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-only", action="store_true", help="stop after step 3 (corpus, spm, binarize)")
    ap.add_argument(
        "--train-args",
        default="",
        help='extra fairseq-train arguments, appended last (e.g. "--encoder-layers 1 --decoder-layers 1")',
    )
    return ap


def parse_args(argv=None):
    """The command line, with the corpus's budget and splits where not given."""
    args = steps.parse_args(build_parser(), argv)
    defaults = translation.CORPUS_DEFAULTS["user" if args.source else args.corpus]
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None):
    translation.run_demo(parse_args(argv))


if __name__ == "__main__":
    main()
