"""prepare-iwslt14's text step against fairseq's prepare-iwslt14.sh, on a hand-made archive.

The expected lines are derived from fairseq's script by hand: grep -v of <url>/<talkid>/
<keywords> anywhere in a line; <title>/<description> tags removed; Moses tokenisation with
escaping; clean-corpus-n (1..175 tokens, ratio 1.5); *then* lowercase; every 23rd line to
valid; in the XML test sets ’ -> ' before tokenising. And the recipe's refusals."""

import os
import sys

import pytest
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
    assert read(out / "raw" / "train.de")[2] == "vielen dank, chris. und es ist mir wirklich eine ehre."
    # test: ’ -> ' before tokenising, as in training text; five sets of two segments
    # the XML is not unescaped: Moses splits & and ; off "&amp;", then escapes the &
    assert read(out / "tok" / "test.en")[:2] == ["it &apos;s great .", "no &amp; amp ; yes"]
    assert read(out / "raw" / "test.en")[:2] == ["it's great.", "no & yes"]
    assert read(out / "tok" / "test.de")[0] == "es ist großartig ."
    assert read(out / "raw" / "test.de")[:2] == ["es ist großartig.", "nein & ja"]
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
    train = read(out / "tok" / "train.en")
    assert train[21:23] == ["sentence 22 .", "sentence 24 ."] and train[-1] == "sentence 45 ."


def test_iwslt_recipe_refuses_missing_data_and_bad_mode(tmp_path):
    train = os.path.join(ROOT, "examples", "iwslt", "train.sh")
    p = run(["bash", train, "nonsense"], check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train, "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "prepare-iwslt14.sh" in p.stdout


def test_clean_pair_keeps_clean_corpus_n_bounds():
    # clean-corpus-n.perl 1 175 -ratio 1.5: both ends inclusive, either side may be the longer
    words = lambda n: " ".join(["w"] * n)  # noqa: E731
    assert iwslt_text.clean_pair(words(1), words(1))
    assert iwslt_text.clean_pair(words(175), words(175))
    assert not iwslt_text.clean_pair(words(176), words(176))
    assert not iwslt_text.clean_pair("", words(1)) and not iwslt_text.clean_pair(words(1), "")
    assert iwslt_text.clean_pair(words(3), words(2)) and iwslt_text.clean_pair(words(2), words(3))
    assert not iwslt_text.clean_pair(words(4), words(2)) and not iwslt_text.clean_pair(words(2), words(4))


def test_command_prints_its_sizes_beside_fairseqs_reruns_and_refuses_misaligned_sides(tmp_path):
    orig, out = make_archive(tmp_path), tmp_path / "out"
    command = [sys.executable, "-m", "lrdrop_cli.iwslt_text", str(orig), str(out)]  # as prepare-iwslt14.sh
    for _ in range(2):  # a rerun writes over the first run's files
        # fairseq's translation README: 160239 / 7283 / 6750
        sizes = run(command, cwd=ROOT).stdout.strip()
        assert sizes == "train=4 (fairseq: 160239) valid=0 (fairseq: 7283) test=10 (fairseq: 6750)"
    (orig / "train.tags.de-en.en").write_text("One.\n", encoding="utf-8")  # German keeps 5 lines: speaker, title, 3
    with pytest.raises(SystemExit, match=r"train sides differ \(5 vs 1 lines\)"):
        iwslt_text.main(str(orig), str(out))
    (tmp_path / "again").mkdir()
    orig = make_archive(tmp_path / "again")
    (orig / f"{iwslt_text.TEST_SETS[2]}.de-en.en.xml").write_text('<seg id="1">Only one</seg>\n', encoding="utf-8")
    with pytest.raises(SystemExit, match=r"IWSLT14.TED.tst2010: 2 German but 1 English segments"):
        iwslt_text.main(str(orig), str(out))
