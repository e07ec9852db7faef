#!/usr/bin/env python
"""Text side of prepare-iwslt14.sh: the splits of fairseq's prepare-iwslt14.sh.

train: train.tags.de-en minus metadata lines, cleaned to 1..175 tokens and
length ratio <= 1.5; valid: every 23rd line of that; test: dev2010, dev2012
(TEDX), tst2010, tst2011, tst2012. Lowercased and Moses-tokenised
(sacremoses). Writes OUT/raw/{split}.{de,en} (lowercased, untokenised: the
references for detokenised sacreBLEU) and OUT/tok/{split}.{de,en}.
"""

import html
import os
import re
import sys

from sacremoses import MosesTokenizer

META = ("<url>", "<talkid>", "<keywords>", "<speaker>", "<reviewer", "<translator", "<doc", "</doc>")
TEST_SETS = [
    "IWSLT14.TED.dev2010",
    "IWSLT14.TEDX.dev2012",
    "IWSLT14.TED.tst2010",
    "IWSLT14.TED.tst2011",
    "IWSLT14.TED.tst2012",
]
SEG = re.compile(r"<seg[^>]*>(.*)</seg>")


def train_lines(path):
    out = []
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if any(s.startswith(m) for m in META):
            continue
        s = re.sub(r"</?(title|description)>", "", s).strip()
        out.append(s)
    return out


def xml_segs(path):
    return [html.unescape(m.group(1).strip()) for m in map(SEG.search, open(path, encoding="utf-8")) if m]


def main(orig, out):
    tok = {"de": MosesTokenizer(lang="de"), "en": MosesTokenizer(lang="en")}

    def t(lang, s):
        return tok[lang].tokenize(s.lower(), escape=False, return_str=True)

    de, en = train_lines(f"{orig}/train.tags.de-en.de"), train_lines(f"{orig}/train.tags.de-en.en")
    if len(de) != len(en):
        sys.exit(f"iwslt_text: train sides differ ({len(de)} vs {len(en)} lines)")
    pairs = []
    for d, e in zip(de, en):
        td, te = t("de", d), t("en", e)
        nd, ne = len(td.split()), len(te.split())
        if 1 <= nd <= 175 and 1 <= ne <= 175 and max(nd, ne) <= 1.5 * min(nd, ne):
            pairs.append(((d.lower(), e.lower()), (td, te)))
    splits = {
        "valid": [p for i, p in enumerate(pairs, 1) if i % 23 == 0],
        "train": [p for i, p in enumerate(pairs, 1) if i % 23 != 0],
    }
    test = []
    for name in TEST_SETS:
        sd, se = xml_segs(f"{orig}/{name}.de-en.de.xml"), xml_segs(f"{orig}/{name}.de-en.en.xml")
        test += [((d.lower(), e.lower()), (t("de", d), t("en", e))) for d, e in zip(sd, se)]
    splits["test"] = test
    for kind, idx in (("raw", 0), ("tok", 1)):
        os.makedirs(f"{out}/{kind}", exist_ok=True)
        for split, ps in splits.items():
            for li, lang in enumerate(("de", "en")):
                with open(f"{out}/{kind}/{split}.{lang}", "w", encoding="utf-8") as f:
                    f.writelines(p[idx][li] + "\n" for p in ps)
    print(" ".join(f"{k}={len(v)}" for k, v in splits.items()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
