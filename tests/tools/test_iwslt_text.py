"""prepare-iwslt14's text step against fairseq's prepare-iwslt14.sh, on a hand-made archive.

The expected lines are derived from fairseq's script by hand: grep -v of <url>/<talkid>/
<keywords> anywhere in a line; <title>/<description> tags removed; Moses tokenisation with
escaping; clean-corpus-n (1..175 tokens, ratio 1.5); *then* lowercase; every 23rd line to
valid; in the XML test sets ’ -> ' before tokenising. And the recipe's refusals."""

import os

from conftest import ROOT, run

from lrdrop_cli import iwslt_text

TRAIN = {
    "de": [
        "<url>http://www.ted.com/talks/x.html</url>",
        "<keywords>talks, culture</keywords>",
        "<speaker>Al Gore</speaker>",
        "<talkid>1</talkid>",
        "<title>Al Gore: Mittelmaß</title>",
        "Vielen Dank, Chris. Und es ist mir wirklich eine Ehre.",
        "Eins zwei drei vier",
        "Ja.",
    ],
    "en": [
        "<url>http://www.ted.com/talks/x.html</url>",
        "<keywords>talks, culture</keywords>",
        "<speaker>Al Gore</speaker>",
        "<talkid>1</talkid>",
        "<title>Al Gore: Mediocrity</title>",
        "Thank you so much, Chris. And it's truly a great honor.",
        "One",  # 4 tokens against 1: ratio > 1.5, dropped
        "Yes.",
    ],
}
XML = {
    "de": '<doc docid="1">\n<seg id="1"> Es ist großartig. </seg>\n<seg id="2">Nein &amp; ja</seg>\n</doc>\n',
    "en": '<doc docid="1">\n<seg id="1"> It’s great. </seg>\n<seg id="2">No &amp; yes</seg>\n</doc>\n',
}


def make_archive(tmp_path):
    orig = tmp_path / "de-en"
    orig.mkdir()
    for lang, lines in TRAIN.items():
        (orig / f"train.tags.de-en.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in iwslt_text.TEST_SETS:
        for lang, text in XML.items():
            (orig / f"{name}.de-en.{lang}.xml").write_text(text, encoding="utf-8")
    return orig


def read(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_text_step_matches_fairseqs_script(tmp_path):
    out = tmp_path / "out"
    sizes = iwslt_text.main(str(make_archive(tmp_path)), str(out))
    # train: the <speaker> line is kept (fairseq does not drop it), the 4:1 pair is cleaned away
    assert read(out / "tok" / "train.en") == [
        "&lt; speaker &gt; al gore &lt; / speaker &gt;",  # Moses splits off < > / and escapes them
        "al gore : mediocrity",
        "thank you so much , chris . and it &apos;s truly a great honor .",
        "yes .",
    ]
    assert read(out / "tok" / "train.de")[2] == "vielen dank , chris . und es ist mir wirklich eine ehre ."
    assert read(out / "raw" / "train.en")[2] == "thank you so much, chris. and it's truly a great honor."
    # test: ’ -> ' before tokenising, as in training text; five sets of two segments
    # the XML is not unescaped: Moses splits & and ; off "&amp;", then escapes the &
    assert read(out / "tok" / "test.en")[:2] == ["it &apos;s great .", "no &amp; amp ; yes"]
    assert read(out / "raw" / "test.en")[:2] == ["it's great.", "no & yes"]
    assert read(out / "tok" / "test.de")[0] == "es ist großartig ."
    assert sizes == {"train": 4, "valid": 0, "test": 10}


def test_every_23rd_pair_goes_to_valid(tmp_path):
    orig = make_archive(tmp_path)
    for lang, word in (("de", "Satz"), ("en", "Sentence")):
        (orig / f"train.tags.de-en.{lang}").write_text(
            "".join(f"{word} {i}.\n" for i in range(1, 47)), encoding="utf-8"
        )
    out = tmp_path / "out"
    assert iwslt_text.main(str(orig), str(out)) == {"train": 44, "valid": 2, "test": 10}
    assert read(out / "tok" / "valid.en") == ["sentence 23 .", "sentence 46 ."]


def test_iwslt_recipe_refuses_missing_data_and_bad_mode(tmp_path):
    train = os.path.join(ROOT, "examples", "iwslt", "train.sh")
    p = run(["bash", train, "nonsense"], check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train, "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "prepare-iwslt14.sh" in p.stdout
