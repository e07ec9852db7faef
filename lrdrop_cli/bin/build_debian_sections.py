"""lrdrop-build-debian-sections: see :mod:`lrdrop_cli.corpora.debian_sections`."""

import argparse
import sys

from lrdrop_cli.corpora import debian_sections


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=debian_sections.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out_dir")
    ap.add_argument(
        "--sections",
        default=",".join(debian_sections.SECTIONS),
        help="comma-separated archive sections (the classes)",
    )
    ap.add_argument("--valid", type=int, default=600)
    ap.add_argument("--test", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--packages", help="an uncompressed Debian Packages file (default: fetch with apt-get)")
    ap.add_argument("--translations", help="an uncompressed Translation-en file (default: fetch with apt-get)")
    a = ap.parse_args(argv)
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    try:
        sizes = debian_sections.build(a.out_dir, sections, a.valid, a.test, a.seed, a.packages, a.translations)
    except (RuntimeError, ValueError, OSError) as e:
        sys.exit(f"build_debian_sections: {e}")
    print(f"wrote {a.out_dir}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
