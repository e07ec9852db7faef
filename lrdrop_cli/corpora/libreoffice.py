"""Build a German-English corpus from LibreOffice's own translations (Debian's LibreOffice 7.4).

Source and licence: LibreOffice 7.4 (The Document Foundation, https://www.libreoffice.org/),
MPL-2.0 with some Apache-2.0 parts (the packages' copyright files), as packaged by Debian:
``libreoffice-l10n-de`` (the interface, gettext catalogs) and ``libreoffice-help-de`` /
``libreoffice-help-en-us`` (the help pages). The corpus is built on the user's machine,
never shipped.

- Interface: ``usr/lib/libreoffice/program/resource/de/LC_MESSAGES/*.mo``, msgid English,
  msgstr German (a msgctxt prefix ends at ``\\x04``).
- Help: ``usr/share/libreoffice/help/{de,en-US}/text/**/*.html``; elements with the same file
  path and the same id (``par_id...``, ``hd_id...``) are translations of each other.

Cleaning, each step counted in the report: accelerators stripped (``~``, ``_`` and ``&``
before a letter, as menus mark their keys); whitespace collapsed; pairs dropped whose sides are
equal (untranslated), that are empty, or longer than ``--max-words``; one translation kept per
English string (the most frequent, then the first).

Placeholders (``%1``, ``%s``, ``%PRODUCTNAME``, ``$(ERR)``) are kept: a translation must carry
them over unchanged, so they are part of the task. The frequent ones are written to
``protected_symbols.txt``, which the demo's sentencepiece step reads as user-defined symbols,
so each stays one token instead of being split (and mangled) by BPE. Markup inside help
paragraphs (links, inline tags) is dropped; its text is kept.

Split without leakage: lines are normalised (lowercase, digits masked, whitespace collapsed)
and every pair is linked to its normalised English and German strings and, for help
paragraphs, to its help file; linked pairs form one group, and whole groups go to test, valid
or train (in an order fixed by ``--seed``). So no normalised string straddles the split, and
one help file's paragraphs stay together. The report then gives the fuzzy-match rates of test
against train and the BLEU of a nearest-neighbour translation memory (the English of the most
similar training German line): the floor a trained model must clearly beat.

    lrdrop-build-libreoffice-corpus OUT_DIR [--debs DIR] [--valid 1000 --test 1500 --seed 1]

With no ``--debs``, the three packages are fetched with ``apt-get download`` into
OUT_DIR/download. Writes OUT_DIR/{train,valid,test}.{de,en}, OUT_DIR/protected_symbols.txt,
OUT_DIR/SOURCE.txt (licence, counts, leakage, TM baseline) and OUT_DIR/report.json.
"""

import collections
import difflib
import gettext
import glob
import html.parser
import json
import math
import os
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from lrdrop_cli.corpora.common import apt_download, newest_deb, split_by_group, unpack, write

PACKAGES = ("libreoffice-l10n-de", "libreoffice-help-de", "libreoffice-help-en-us")
MO_DIR = "usr/lib/libreoffice/program/resource/de/LC_MESSAGES"
HELP_DIR = "usr/share/libreoffice/help"
ALIGNABLE_ID = re.compile(r"^(par|hd)_id\w*$")
ACCELERATOR = re.compile(r"~|(?<![\w&])[_&](?=\w)|(?<=[^\W\d_])_(?=[^\W\d_])")
SPACE = re.compile(r"\s+")
DIGITS = re.compile(r"\d+")
PLACEHOLDER = re.compile(r"%[A-Za-z_]+\d*|%\d+|\$\([A-Za-z_0-9]+\)|%[sdfu]")
SOURCE_NOTE = (
    "German-English pairs from LibreOffice 7.4's own translations (The Document Foundation,\n"
    "https://www.libreoffice.org/), licence MPL-2.0 with some Apache-2.0 parts, via Debian packages\n"
    "libreoffice-l10n-de (interface strings) and libreoffice-help-de / libreoffice-help-en-us (help\n"
    "pages); built by lrdrop-build-libreoffice-corpus.\n"
)

Pair = Tuple[str, str, str]  # (German, English, group key: 'help:<file>' or 'ui')


# ------------------------------------------------------------------ reading
def clean(text: str, interface: bool = False) -> str:
    """Whitespace collapsed; in interface strings also the accelerator marks: ``~``, and ``_`` or
    ``&`` before a letter at a word's start or ``_`` between two letters (GTK's ``Co_ntinuous``),
    except in placeholders (``%AVERAGE_VALUE``). Help text has no accelerators; there ``&`` and
    ``_`` are formula operators and names."""
    if interface:
        text = " ".join(
            w if PLACEHOLDER.fullmatch(w.strip(".,:;()")) else ACCELERATOR.sub("", w) for w in text.split(" ")
        )
    return SPACE.sub(" ", text).strip()


def interface_pairs(mo_paths: Iterable[str]) -> List[Pair]:
    """(German, English, 'ui') for every singular entry of the gettext catalogs, context dropped."""
    pairs = []
    for path in sorted(mo_paths):
        with open(path, "rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog
        for msgid, msgstr in catalog.items():
            if not isinstance(msgid, str) or not msgid:  # plural forms are keyed (msgid, n); "" is the header
                continue
            pairs.append((msgstr, msgid.split("\x04", 1)[-1], "ui"))
    return pairs


class _IdText(html.parser.HTMLParser):
    """Text of each element whose id is alignable (``par_id...``, ``hd_id...``), inner markup dropped."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: Dict[str, str] = {}
        self._open: List[list] = []  # [id, tag, depth, parts]

    def handle_starttag(self, tag, attrs):
        for item in self._open:
            if item[1] == tag:
                item[2] += 1
        element_id = dict(attrs).get("id") or ""
        if ALIGNABLE_ID.match(element_id) and not self._open:
            self._open.append([element_id, tag, 1, []])

    def handle_endtag(self, tag):
        for item in list(self._open):
            if item[1] == tag:
                item[2] -= 1
                if item[2] == 0:
                    self._open.remove(item)
                    self.texts.setdefault(item[0], "".join(item[3]))

    def handle_data(self, data):
        for item in self._open:
            item[3].append(data)


def element_texts(html_text: str) -> Dict[str, str]:
    parser = _IdText()
    parser.feed(html_text)
    parser.close()
    return parser.texts


def help_pairs(help_root: str) -> List[Pair]:
    """(German, English, 'help:<file>') for elements with the same id in the same file of both languages."""
    pairs = []
    en_root = os.path.join(help_root, "en-US")
    for en_path in sorted(glob.glob(os.path.join(en_root, "text", "**", "*.html"), recursive=True)):
        rel = os.path.relpath(en_path, en_root)
        de_path = os.path.join(help_root, "de", rel)
        if not os.path.isfile(de_path):
            continue
        with open(en_path, encoding="utf-8") as f:
            en = element_texts(f.read())
        with open(de_path, encoding="utf-8") as f:
            de = element_texts(f.read())
        pairs.extend((de[i], en[i], f"help:{rel}") for i in en if i in de)
    return pairs


# ------------------------------------------------------------------ cleaning
def clean_pairs(raw: Sequence[Pair], max_words: int) -> Tuple[List[Pair], Dict[str, int]]:
    """Cleaned pairs, one German translation per English string, and the count after each step."""
    counts = {"read": len(raw)}
    pairs = [(clean(de, g == "ui"), clean(en, g == "ui"), g) for de, en, g in raw]
    pairs = [p for p in pairs if p[0] and p[1]]
    counts["non-empty"] = len(pairs)
    pairs = [p for p in pairs if p[0] != p[1]]
    counts["translated (sides differ)"] = len(pairs)
    pairs = [p for p in pairs if max(len(p[0].split()), len(p[1].split())) <= max_words]
    counts[f"at most {max_words} words"] = len(pairs)
    by_english: Dict[str, List[Pair]] = collections.OrderedDict()
    for p in pairs:
        by_english.setdefault(p[1], []).append(p)
    kept = []
    for same_english in by_english.values():
        most = collections.Counter(de for de, _, _ in same_english).most_common(1)[0][0]
        kept.append(next(p for p in same_english if p[0] == most))
    counts["one translation per English string"] = len(kept)
    return kept, counts


def normalise(text: str) -> str:
    return SPACE.sub(" ", DIGITS.sub("0", text.lower())).strip()


def groups(pairs: Sequence[Pair]) -> List[int]:
    """A group id per pair, the index of the group's first pair: pairs sharing a normalised
    English or German string or a help file are linked (union-find), so that a whole group
    lands in one split."""
    parent: Dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for i, (de, en, g) in enumerate(pairs):
        node = f"pair:{i}"
        union(node, "en:" + normalise(en))
        union(node, "de:" + normalise(de))
        if g != "ui":
            union(node, g)
    first: Dict[str, int] = {}
    return [first.setdefault(find(f"pair:{i}"), i) for i in range(len(pairs))]


def grouped_split(pairs: Sequence[Pair], n_valid: int, n_test: int, seed: int):
    """{split: [(de, en)]}: whole :func:`groups` per split, in an order fixed by ``seed``
    (:func:`common.split_by_group`); a group larger than half the smaller held-out split always
    goes to train (it would fill that split alone). Pairs keep their order within a split."""
    max_group = max(1, min(n_valid, n_test) // 2)
    splits = split_by_group(groups(pairs), n_valid, n_test, seed, max_group)
    return {name: [pairs[i][:2] for i in sorted(indices)] for name, indices in splits.items()}


def protected_symbols(pairs: Sequence[Tuple[str, str]], min_count: int = 5) -> List[str]:
    """Placeholders seen at least ``min_count`` times on the English side, most frequent first."""
    counts = collections.Counter(m for _, en in pairs for m in PLACEHOLDER.findall(en))
    return [s for s, c in counts.most_common() if c >= min_count]


# ------------------------------------------------------------------ leakage and the TM floor
def _tokens(text: str) -> List[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


class TranslationMemory:
    """The most similar training German line for a query (token-level difflib ratio), found
    among the candidates that share the most informative words with it."""

    def __init__(self, train: Sequence[Tuple[str, str]], candidates: int = 30):
        self.train = list(train)
        self.tokens = [_tokens(de) for de, _ in self.train]
        self.index: Dict[str, List[int]] = collections.defaultdict(list)
        for i, toks in enumerate(self.tokens):
            for t in set(toks):
                self.index[t].append(i)
        self.n = len(self.train)
        self.candidates = candidates

    def best(self, german: str) -> Tuple[float, int]:
        """(similarity in [0, 1], index of the training pair); (0, -1) with no shared word."""
        query = _tokens(german)
        scores: Dict[int, float] = collections.defaultdict(float)
        for t in set(query):
            posting = self.index.get(t, ())
            if 0 < len(posting) <= max(1000, self.n // 20):  # skip words that are everywhere
                idf = math.log(self.n / len(posting))
                for i in posting:
                    scores[i] += idf
        if not scores:
            return 0.0, -1
        shortlist = sorted(scores, key=scores.get, reverse=True)[: self.candidates]
        best = max(shortlist, key=lambda i: (difflib.SequenceMatcher(None, query, self.tokens[i]).ratio(), -i))
        return difflib.SequenceMatcher(None, query, self.tokens[best]).ratio(), best


def leakage_report(train, test, thresholds=(0.7, 0.9)) -> Dict[str, object]:
    """Fuzzy-match rates of test German against train German and the TM baseline's sacreBLEU / chrF."""
    from lrdrop_cli.metrics import bleu as score_bleu
    from lrdrop_cli.metrics import chrf as score_chrf

    memory = TranslationMemory(train)
    matches = [memory.best(de) for de, _ in test]
    hyps = [train[i][1] if i >= 0 else "" for _, i in matches]
    refs = [en for _, en in test]
    (bleu, bleu_signature), (chrf, _) = score_bleu(hyps, refs), score_chrf(hyps, refs)
    report = {f"test_fuzzy_ge_{t:g}": sum(s >= t for s, _ in matches) / len(test) for t in thresholds}
    report.update(
        {
            "test_exact_german_in_train": sum(s == 1.0 for s, _ in matches) / len(test),
            "tm_bleu": round(bleu.score, 2),
            "tm_bleu_signature": bleu_signature,
            "tm_chrf": round(chrf.score, 2),
        }
    )
    return report


# ------------------------------------------------------------------ fetching
def fetch_packages(download_dir: str) -> str:
    """apt-get download the three packages and unpack them; returns the unpacked root."""
    root = os.path.join(download_dir, "x")
    if os.path.isdir(os.path.join(root, MO_DIR)) and os.path.isdir(os.path.join(root, HELP_DIR, "en-US")):
        return root
    instead = (
        f"Or download {', '.join(PACKAGES)} (.deb files) by hand and pass --debs DIR, or use your own "
        "parallel corpus with lrdrop-demo --source FILE --target FILE."
    )
    return unpack(list(apt_download(PACKAGES, download_dir, instead).values()), root)


def unpack_folder(deb_dir: str, root: str) -> str:
    """Unpack the three packages' newest .deb files found in ``deb_dir`` into ``root``."""
    debs = []
    for package in PACKAGES:
        deb = newest_deb(deb_dir, package)
        if deb is None:
            raise RuntimeError(f"no {package}_*.deb in {deb_dir}")
        debs.append(deb)
    return unpack(debs, root)


# ------------------------------------------------------------------ the command
def build(
    out_dir: str,
    root: Optional[str] = None,
    n_valid: int = 1000,
    n_test: int = 1500,
    seed: int = 1,
    max_words: int = 60,
    leakage: bool = True,
):
    """Write the corpus under ``out_dir`` from the unpacked packages at ``root``; returns the report."""
    if root is None:
        root = fetch_packages(os.path.join(out_dir, "download"))
    raw = interface_pairs(glob.glob(os.path.join(root, MO_DIR, "*.mo")))
    n_interface = len(raw)
    raw += help_pairs(os.path.join(root, HELP_DIR))
    if not raw:
        raise RuntimeError(f"no LibreOffice catalogs or help pages under {root}")
    pairs, counts = clean_pairs(raw, max_words)
    splits = grouped_split(pairs, n_valid, n_test, seed)
    symbols = protected_symbols(splits["train"])
    report = {
        "seed": seed,
        "read": {"interface": n_interface, "help": len(raw) - n_interface},
        "cleaning": counts,
        "splits": {k: len(v) for k, v in splits.items()},
        "mean_english_words": round(sum(len(p[1].split()) for p in pairs) / len(pairs), 2),
        "protected_symbols": len(symbols),
    }
    if leakage:
        report["leakage"] = leakage_report(splits["train"], splits["test"])
    write(out_dir, splits, SOURCE_NOTE + format_report(report))
    with open(os.path.join(out_dir, "protected_symbols.txt"), "w", encoding="utf-8") as f:
        f.writelines(s + "\n" for s in symbols)
    with open(os.path.join(out_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return report


def format_report(report) -> str:
    lines = [f"seed {report['seed']}; read: interface {report['read']['interface']}, help {report['read']['help']}"]
    lines += [f"  {step}: {n}" for step, n in report["cleaning"].items()]
    lines.append("splits: " + ", ".join(f"{k} {v}" for k, v in report["splits"].items()))
    lines.append(f"mean English words: {report['mean_english_words']}")
    leak = report.get("leakage")
    if leak:
        lines.append(
            "test vs train: exact German {:.1%}, fuzzy >= 0.9 {:.1%}, >= 0.7 {:.1%}".format(
                leak["test_exact_german_in_train"], leak["test_fuzzy_ge_0.9"], leak["test_fuzzy_ge_0.7"]
            )
        )
        lines.append(
            f"translation-memory floor on test: sacreBLEU {leak['tm_bleu']} ({leak['tm_bleu_signature']}), "
            f"chrF {leak['tm_chrf']}"
        )
    return "\n".join(lines) + "\n"
