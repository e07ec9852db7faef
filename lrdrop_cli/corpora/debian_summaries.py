"""Build a small English summarisation corpus from Debian's package descriptions.

Each Debian package has a one-line synopsis and a long description written by
its maintainers; long description -> synopsis is a headline-generation task
(~45k pairs, median ~55-word input, ~7-word summary). Source: the Debian
archive's ``Translation-en`` index (bookworm main), text by each package's
maintainers under the package's licence; fetched and built on the user's
machine, never shipped.

The index is fetched with ``apt-get update`` into OUT_DIR/download with its own
state directory and ``Acquire::Languages "en"`` (Docker images of Debian switch
translations off), so the system's apt lists are not touched. Pairs are
de-duplicated on the description; packages sharing their first paragraph (a
library and its -dev/-doc siblings) go to the same split, so test descriptions
are not near-copies of training ones.

    lrdrop-build-debian-summaries OUT_DIR [--index FILE] [--valid 500 --test 500 --seed 1]

Writes OUT_DIR/{train,valid,test}.{source,target} and OUT_DIR/SOURCE.txt.
"""

import glob
import os
import shutil
import subprocess
from typing import Dict, Iterable, Iterator, List, Tuple

from lrdrop_cli.corpora.common import split_by_group, write

LANGS = ("source", "target")


def stanzas(lines: Iterable[str]) -> Iterator[Dict[str, str]]:
    """The paragraphs of a Debian control file (Packages, Translation-en): {field: value}, a
    multi-line value's continuation lines kept one per line (their leading space removed)."""
    record: Dict[str, str] = {}
    key = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if record:
                yield record
            record, key = {}, None
        elif line[0] in " \t" and key is not None:
            record[key] += "\n" + line[1:]
        elif ":" in line:
            key, value = line.split(":", 1)
            record[key] = value.strip()
    if record:
        yield record


def description_paragraphs(description: str) -> Tuple[str, List[str]]:
    """(synopsis, paragraphs of the long description) of a Description field's value: a lone
    ``.`` line breaks paragraphs, in Debian's description format."""
    synopsis, *body = description.split("\n")
    paras: List[List[str]] = [[]]
    for line in body:
        text = line.strip()
        if text == ".":
            paras.append([])
        elif text:
            paras[-1].append(text)
    return synopsis.strip(), [p for p in (" ".join(x) for x in paras) if p]


def parse_index(lines: Iterable[str]) -> List[Tuple[str, str, List[str]]]:
    """(package, synopsis, paragraphs of the long description) per ``Translation-en`` record."""
    return [
        (r["Package"], *description_paragraphs(r["Description-en"]))
        for r in stanzas(lines)
        if "Package" in r and "Description-en" in r
    ]


def summary_pairs(records, min_words: int = 15) -> List[Tuple[str, str, str]]:
    """(description, synopsis, group key) for descriptions of at least ``min_words`` words,
    de-duplicated on the description; the group key is the first paragraph."""
    pairs, seen = [], set()
    for _pkg, synopsis, paras in records:
        doc = " ".join(paras)
        if len(doc.split()) < min_words or len(synopsis.split()) < 2 or doc in seen:
            continue
        seen.add(doc)
        pairs.append((doc, synopsis, paras[0]))
    return pairs


# index -> the apt list file holding it (the largest match: bookworm main, not its updates)
INDEX_FILES = {"Translation-en": "*_main_i18n_Translation-en*", "Packages": "*_main_binary-*_Packages*"}


def fetch_index(download_dir: str, index: str = "Translation-en") -> str:
    """apt-get update (English descriptions only, private state dir); returns the path of the
    ``index`` (a key of :data:`INDEX_FILES`) as uncompressed text."""
    text = os.path.join(download_dir, f"{index}.txt")
    if os.path.isfile(text):
        return text
    if shutil.which("apt-get") is None:
        raise RuntimeError(
            "apt-get not found (not a Debian/Ubuntu system): pass --index FILE with a Debian "
            "Translation-en file (from any Debian mirror: dists/bookworm/main/i18n/Translation-en.bz2, "
            "uncompressed), or bring your own document/summary pairs with --source FILE --target FILE"
        )
    lists = os.path.join(download_dir, "lists")
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    conf = os.path.join(download_dir, "apt.conf")
    with open(conf, "w") as f:
        f.write('Acquire::Languages "en";\n')  # a scalar replaces Docker's "none"
    cmd = [
        "apt-get",
        "update",
        "-c",
        conf,
        "-o",
        f"Dir::State::Lists={lists}",
        "-o",
        f"Dir::Cache={download_dir}/cache",
    ]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found = sorted(glob.glob(os.path.join(lists, INDEX_FILES[index])), key=os.path.getsize)
    if p.returncode != 0 or not found:
        raise RuntimeError(
            f"'{' '.join(cmd)}' did not fetch {index}:\n{p.stdout[-1500:]}\n"
            "Is a Debian mirror reachable? Or pass --index FILE."
        )
    with open(text + ".tmp", "wb") as out:  # apt-helper decompresses any of apt's formats
        subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", found[-1]], stdout=out, check=True)
    os.replace(text + ".tmp", text)
    return text


def grouped_split(examples, n_valid: int, n_test: int, seed: int):
    """(text, label, group) examples -> {split: [(text, label)]}: whole groups per split
    (:func:`common.split_by_group`), a group's examples in text order."""
    examples = sorted(examples, key=lambda e: e[0])
    splits = split_by_group([e[2] for e in examples], n_valid, n_test, seed)
    return {name: [examples[i][:2] for i in indices] for name, indices in splits.items()}


def build(out_dir: str, index_path=None, n_valid=500, n_test=500, seed=1, min_words=15):
    if index_path is None:
        index_path = fetch_index(os.path.join(out_dir, "download"))
    with open(index_path, encoding="utf-8") as f:
        splits = grouped_split(summary_pairs(parse_index(f), min_words), n_valid, n_test, seed)
    note = (
        "English document -> summary pairs: Debian package long descriptions -> synopses\n"
        "(Debian archive, Translation-en index; text by each package's maintainers under its licence);\n"
        f"built by lrdrop-build-debian-summaries (seed {seed}, descriptions of >= {min_words} words,\n"
        "de-duplicated, packages sharing a first paragraph kept in one split).\n"
        + "".join(f"{k}: {len(v)} pairs\n" for k, v in splits.items())
    )
    write(out_dir, splits, note, LANGS)
    return {k: len(v) for k, v in splits.items()}
