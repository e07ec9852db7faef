#!/usr/bin/env python
"""Text side of prepare-iwslt14.sh: fairseq's examples/translation/prepare-iwslt14.sh, step by step.

- train: each side of train.tags.de-en without the lines that contain ``<url>``, ``<talkid>``
  or ``<keywords>`` (fairseq's ``grep -v``: anywhere in the line; nothing else is dropped),
  ``<title>``/``<description>`` tags removed, Moses-tokenised, cleaned to 1..175 tokens and a
  length ratio <= 1.5 (clean-corpus-n), then lowercased; valid: every 23rd line of that.
- test: dev2010, dev2012 (TEDX), tst2010, tst2011, tst2012: the ``<seg id`` lines without their
  tags, ``’`` replaced by ``'`` (fairseq does this for these XML sets only), Moses-tokenised,
  lowercased.

Tokenise *then* lowercase, as fairseq does: Moses keeps a period attached to a word when the
next word is lowercase, so lowercasing first would turn "Chris. And" into ``chris.``. Like
tokenizer.perl without ``-no-escape``, sacremoses escapes ``'`` and ``"`` (``&apos;``, ``&quot;``).
Writes OUT/tok/{split}.{de,en} (what the model trains on, and the tokenised BLEU's reference)
and OUT/raw/{split}.{de,en} (lowercased, untokenised, entities decoded: the references for
detokenised sacreBLEU), and prints the split sizes beside fairseq's.
"""

import html
import os
import re
import sys

from sacremoses import MosesTokenizer

META = ("<url>", "<talkid>", "<keywords>")
TAGS = re.compile(r"</?(title|description)>")
TEST_SETS = [
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
]
SEG_OPEN = re.compile(r'<seg id="[0-9]*">\s*')
SEG_CLOSE = re.compile(r"\s*</seg>\s*")
# the sizes fairseq's script is reported to produce (fairseq's translation README, as quoted in
# R-Drop's and others' logs); checked against the archive by whoever has it, not here
FAIRSEQ_SIZES = {"train": 160239, "valid": 7283, "test": 6750}


def train_lines(path):
    with open(path, encoding="utf-8") as f:
        return [TAGS.sub("", line.rstrip("\n")).strip() for line in f if not any(m in line for m in META)]


def xml_segs(path):
    with open(path, encoding="utf-8") as f:
        return [
            SEG_CLOSE.sub("", SEG_OPEN.sub("", line.rstrip("\n"))).replace("\u2019", "'")
            for line in f
            if "<seg id" in line
        ]


def tokenizers():
    moses = {"de": MosesTokenizer(lang="de"), "en": MosesTokenizer(lang="en")}
    return lambda lang, s: moses[lang].tokenize(s.strip(), escape=True, return_str=True)


def clean_pair(td, te, max_tokens=175, ratio=1.5):
    """clean-corpus-n.perl -ratio 1.5 ... 1 175 on one tokenised pair."""
    nd, ne = len(td.split()), len(te.split())
    return 1 <= nd <= max_tokens and 1 <= ne <= max_tokens and nd <= ratio * ne and ne <= ratio * nd


def main(orig, out):
    tok = tokenizers()
    de, en = train_lines(f"{orig}/train.tags.de-en.de"), train_lines(f"{orig}/train.tags.de-en.en")
    if len(de) != len(en):
        sys.exit(f"iwslt_text: train sides differ ({len(de)} vs {len(en)} lines)")
    pairs = []
    for d, e in zip(de, en):
        td, te = tok("de", d), tok("en", e)
        if clean_pair(td, te):
            pairs.append(((d.lower(), e.lower()), (td.lower(), te.lower())))
    splits = {
        "train": [p for i, p in enumerate(pairs, 1) if i % 23 != 0],
        "valid": [p for i, p in enumerate(pairs, 1) if i % 23 == 0],
    }
    test = []
    for name in TEST_SETS:
        sd, se = xml_segs(f"{orig}/{name}.de-en.de.xml"), xml_segs(f"{orig}/{name}.de-en.en.xml")
        if len(sd) != len(se):
            sys.exit(f"iwslt_text: {name}: {len(sd)} German but {len(se)} English segments")
        raw = [(html.unescape(d).lower(), html.unescape(e).lower()) for d, e in zip(sd, se)]
        test += [(r, (tok("de", d).lower(), tok("en", e).lower())) for r, d, e in zip(raw, sd, se)]
    splits["test"] = test
    for kind, idx in (("raw", 0), ("tok", 1)):
        os.makedirs(f"{out}/{kind}", exist_ok=True)
        for split, ps in splits.items():
            for li, lang in enumerate(("de", "en")):
                with open(f"{out}/{kind}/{split}.{lang}", "w", encoding="utf-8") as f:
                    f.writelines(p[idx][li] + "\n" for p in ps)
    print(" ".join(f"{k}={len(v)} (fairseq: {FAIRSEQ_SIZES[k]})" for k, v in splits.items()))
    return {k: len(v) for k, v in splits.items()}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
