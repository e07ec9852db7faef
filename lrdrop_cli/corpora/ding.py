"""Build a German-English sentence corpus from the Ding dictionary (Debian ``trans-de-en``).

Source and licence: the Ding German-English dictionary by Frank Richter,
https://dict.tu-chemnitz.de/, GPL-2.0-or-later, as packaged by Debian
(``trans-de-en``). The corpus is built on the user's machine, never shipped.

Lines look like ``german entries :: english entries``; each side is split by
`` | `` into aligned sub-entries, alternatives within a sub-entry by ``;``,
with grammar tags ``{n}`` and domain tags ``[coll.]``. Many sub-entries are
example sentences. A pair is kept when, after taking the first alternative
and stripping tags, both sides look like sentences (capitalised, ending in
``.?!``, at least 3 words). Pairs are de-duplicated on the German side, then
split into train/valid/test with a fixed seed.

    lrdrop-build-ding-corpus OUT_DIR [--dict PATH] [--valid 500 --test 1000 --seed 1]

With no ``--dict`` the Debian package is fetched with ``apt-get download``
(no installation, no root needed beyond apt's cache) into OUT_DIR/download.
Writes OUT_DIR/{train,valid,test}.{de,en} and OUT_DIR/SOURCE.txt.
"""

import os
import random
import re
from typing import Iterable, List, Optional, Tuple

from lrdrop_cli.corpora.common import apt_download, shuffled_split, unpack, write

TAG = re.compile(r"\{[^}]*\}|\[[^\]]*\]|<[^>]*>")
SPACE = re.compile(r"\s+")
SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:])")
DING_IN_DEB = "usr/share/trans/de-en"


def clean(entry: str) -> str:
    first = entry.split(";")[0]
    return SPACE_BEFORE_PUNCT.sub(r"\1", SPACE.sub(" ", TAG.sub(" ", first))).strip()


def is_sentence(s: str) -> bool:
    return len(s) > 1 and s[0].isupper() and s[-1] in ".?!" and len(s.split()) >= 3


def sentence_pairs(lines: Iterable[str], max_words: Optional[int] = None) -> List[Tuple[str, str]]:
    """Aligned (German, English) sentence pairs, de-duplicated on the German side, in file order.

    ``max_words``: drop pairs where either side has more words (None: keep all)."""
    pairs, seen = [], set()
    for line in lines:
        line = line.rstrip("\n")
        if not line or line.startswith("#") or " :: " not in line:
            continue
        de_side, en_side = line.split(" :: ", 1)
        de_subs, en_subs = de_side.split(" | "), en_side.split(" | ")
        if len(de_subs) != len(en_subs):
            continue  # misaligned entry: cannot trust the pairing
        for de, en in zip(de_subs, en_subs):
            de, en = clean(de), clean(en)
            if max_words is not None and max(len(de.split()), len(en.split())) > max_words:
                continue
            if is_sentence(de) and is_sentence(en) and de.lower() not in seen:
                seen.add(de.lower())
                pairs.append((de, en))
    return pairs


PARENS = re.compile(r"\([^)]*\)")


def phrase_pairs(lines: Iterable[str], max_words: int = 6) -> List[Tuple[str, str]]:
    """Aligned dictionary entries that are not sentences (words and short phrases, 1..max_words
    words per side, parenthesised glosses removed), de-duplicated on the German side."""
    pairs, seen = [], set()
    for line in lines:
        if not line.strip() or line.startswith("#") or " :: " not in line:
            continue
        de_side, en_side = line.rstrip("\n").split(" :: ", 1)
        de_subs, en_subs = de_side.split(" | "), en_side.split(" | ")
        if len(de_subs) != len(en_subs):
            continue
        for de, en in zip(de_subs, en_subs):
            de, en = (SPACE.sub(" ", PARENS.sub(" ", clean(x))).strip() for x in (de, en))
            if not de or not en or is_sentence(de) or is_sentence(en):
                continue
            if max(len(de.split()), len(en.split())) <= max_words and de.lower() not in seen:
                seen.add(de.lower())
                pairs.append((de, en))
    return pairs


def fetch_ding(download_dir: str) -> str:
    """apt-get download trans-de-en and unpack it; returns the dictionary path."""
    extracted = os.path.join(download_dir, "x", DING_IN_DEB)
    if os.path.isfile(extracted):
        return extracted
    instead = (
        "Download the Ding dictionary (https://dict.tu-chemnitz.de/, file de-en.txt) and pass --dict PATH, "
        "or use your own parallel corpus with the demo's --source FILE --target FILE."
    )
    debs = apt_download(["trans-de-en"], download_dir, instead)
    unpack(list(debs.values()), os.path.join(download_dir, "x"))
    return extracted


def build(
    out_dir: str,
    dict_path: Optional[str] = None,
    n_valid=500,
    n_test=1000,
    seed=1,
    max_words: Optional[int] = None,
    phrases: int = 0,
    train_max_words: Optional[int] = None,
):
    """Sentence splits; with ``phrases`` > 0, that many dictionary word/phrase pairs (a fixed
    random sample) are added to *train only*, as extra lexical data; valid/test stay sentences.
    ``train_max_words`` > ``max_words``: longer sentences (up to that many words) go to train
    too; valid/test are the same as without them."""
    if dict_path is None:
        dict_path = fetch_ding(os.path.join(out_dir, "download"))
    with open(dict_path, encoding="utf-8") as f:
        lines = f.readlines()
    splits = shuffled_split(sentence_pairs(lines, max_words), n_valid, n_test, seed)
    if train_max_words and max_words and train_max_words > max_words:
        held_out = {de.lower() for part in ("valid", "test") for de, _ in splits[part]}
        splits["train"] = splits["train"] + [
            (de, en)
            for de, en in sentence_pairs(lines, train_max_words)
            if max(len(de.split()), len(en.split())) > max_words and de.lower() not in held_out
        ]
    if phrases > 0:
        # only entries made of words the training sentences use: the lexicon the test needs,
        # not the dictionary's many technical terms
        known = {w.strip(".,!?;:\"'()").lower() for de, _ in splits["train"] for w in de.split()}
        extra = [p for p in phrase_pairs(lines) if all(w.lower() in known for w in p[0].split())]
        random.Random(seed).shuffle(extra)
        splits["train"] = splits["train"] + extra[:phrases]
    note = (
        "German-English sentence pairs extracted from the Ding dictionary\n"
        "(Frank Richter, https://dict.tu-chemnitz.de/), licence GPL-2.0-or-later,\n"
        f"via Debian package trans-de-en; built by lrdrop-build-ding-corpus "
        f"(seed {seed}, max words {max_words or 'any'} (train: {train_max_words or max_words or 'any'}), "
        f"dictionary phrase pairs added to train: {phrases}).\n"
        + "".join(f"{k}: {len(v)} pairs\n" for k, v in splits.items())
    )
    write(out_dir, splits, note)
    return {k: len(v) for k, v in splits.items()}
