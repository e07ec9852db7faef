"""Build an English text-classification corpus: Debian package descriptions -> archive section.

Each Debian package has a synopsis and a long description written by its
maintainers (the ``Translation-en`` index) and an archive section (``Section:``
in the ``Packages`` index: games, science, mail, ...); the two are joined by
``Description-md5``. Input: synopsis + long description; label: the section,
among ``--sections`` (default: twelve topical sections, whose descriptions have
to be read to tell them apart; language sections such as python or perl, and
libs/libdevel/doc, are given away by boilerplate). Source: the Debian archive
(bookworm main), text by each package's maintainers under its licence;
fetched and built on the user's machine, never shipped.

Leakage: package names are not part of the input; descriptions that occur
under two sections are dropped, repeated ones kept once; packages that share
the first paragraph of their description (siblings built from one source) go
to the same split.

    lrdrop-build-debian-sections OUT_DIR [--sections games,science,...] [--valid 600 --test 1200 --seed 1]

Writes OUT_DIR/{train,valid,test}.{input0,label} and OUT_DIR/SOURCE.txt.
"""

import collections
import os
from typing import Dict, Iterable, List, Sequence, Tuple

from lrdrop_cli.corpora.common import write
from lrdrop_cli.corpora.debian_summaries import description_paragraphs, fetch_index, grouped_split, stanzas

SECTIONS = (
    "admin",
    "database",
    "editors",
    "games",
    "graphics",
    "mail",
    "math",
    "net",
    "science",
    "sound",
    "text",
    "web",
)
COLUMNS = ("input0", "label")


def long_descriptions(translation_lines: Iterable[str]) -> Dict[str, Tuple[str, List[str]]]:
    """Description-md5 -> (synopsis, paragraphs) from a Translation-en index."""
    return {
        r["Description-md5"]: description_paragraphs(r["Description-en"])
        for r in stanzas(translation_lines)
        if "Description-md5" in r and "Description-en" in r
    }


def section_examples(
    packages_lines: Iterable[str], descriptions: Dict[str, Tuple[str, List[str]]], sections: Sequence[str], min_words=10
) -> List[Tuple[str, str, str]]:
    """(text, section, group key) per package of ``sections`` with a long description of at least
    ``min_words`` words; a text under two sections is dropped, a repeated one kept once."""
    by_text: Dict[str, set] = collections.defaultdict(set)
    group_of = {}
    for r in stanzas(packages_lines):
        section = r.get("Section", "").split("/")[-1]  # contrib/net -> net
        if section not in sections or r.get("Description-md5") not in descriptions:
            continue
        synopsis, paras = descriptions[r["Description-md5"]]
        if not paras or len(" ".join(paras).split()) < min_words:
            continue
        text = " ".join([synopsis.rstrip(".") + "."] + paras)
        by_text[text].add(section)
        group_of[text] = paras[0]
    return [(text, secs.pop(), group_of[text]) for text, secs in by_text.items() if len(secs) == 1]


def build(out_dir, sections=SECTIONS, n_valid=600, n_test=1200, seed=1, packages=None, translations=None):
    download = os.path.join(out_dir, "download")
    packages = packages or fetch_index(download, "Packages")
    translations = translations or fetch_index(download, "Translation-en")
    with open(translations, encoding="utf-8") as f:
        descriptions = long_descriptions(f)
    with open(packages, encoding="utf-8") as f:
        examples = section_examples(f, descriptions, sections)
    missing = set(sections) - {e[1] for e in examples}
    if missing:
        raise ValueError(f"--sections: no packages with a long description in {', '.join(sorted(missing))}")
    splits = grouped_split(examples, n_valid, n_test, seed)
    counts = collections.Counter(label for _text, label in splits["train"])
    note = (
        "English text classification: Debian package descriptions (synopsis + long description) -> archive\n"
        "section (Debian archive, bookworm main: Packages and Translation-en indexes; text by each package's\n"
        f"maintainers under its licence); built by lrdrop-build-debian-sections (seed {seed}; descriptions\n"
        "under two sections dropped, repeats kept once, packages sharing a first paragraph in one split).\n"
        + "".join(f"{k}: {len(v)} examples\n" for k, v in splits.items())
        + "train labels: "
        + ", ".join(f"{k} {v}" for k, v in counts.most_common())
        + "\n"
    )
    write(out_dir, splits, note, COLUMNS)
    return {k: len(v) for k, v in splits.items()}
