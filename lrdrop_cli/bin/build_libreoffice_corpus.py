"""lrdrop-build-libreoffice-corpus: see :mod:`lrdrop_cli.corpora.libreoffice`."""

import argparse
import os
import subprocess
import sys

from lrdrop_cli.corpora import libreoffice


def main(argv=None):
    ap = argparse.ArgumentParser(description=libreoffice.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--debs", help="folder with the three .deb files (default: apt-get download them)")
    ap.add_argument("--root", help="folder where the packages are already unpacked (for tests and reruns)")
    ap.add_argument("--valid", type=int, default=1000)
    ap.add_argument("--test", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-words", type=int, default=60, help="drop pairs with more words on either side")
    ap.add_argument("--no-leakage", action="store_true", help="skip the fuzzy-match and TM-baseline report")
    a = ap.parse_args(argv)
    try:
        root = a.root
        if root is None and a.debs:
            root = libreoffice.unpack_folder(a.debs, os.path.join(a.out_dir, "download", "x"))
        report = libreoffice.build(a.out_dir, root, a.valid, a.test, a.seed, a.max_words, not a.no_leakage)
    except (RuntimeError, ValueError, OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"build_libreoffice_corpus: {e}")
    print(f"wrote {a.out_dir}\n" + libreoffice.format_report(report), end="")


if __name__ == "__main__":
    main()
