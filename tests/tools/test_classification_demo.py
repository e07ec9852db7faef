"""lrdrop-demo-classification and its corpus (Debian package sections)."""

import json
import os

import pytest
from conftest import ROOT, run, tool
from helpers import (
    fairseq_validate,
    json_tail,
)

PACKAGES = """\
Package: nethack
Section: games
Description-md5: g1

Package: nethack-data
Section: games
Description-md5: g2

Package: mutt
Section: contrib/mail
Description-md5: m1

Package: twice
Section: net
Description-md5: g1

Package: libfoo
Section: libs
Description-md5: l1

Package: short
Section: mail
Description-md5: s1
"""


TRANSLATIONS = """\
Package: nethack
Description-md5: g1
Description-en: dungeon exploration game
 A single player dungeon exploration game with many monsters, items and
 levels to find on the way down.
 .
 This package contains the game.

Package: nethack-data
Description-md5: g2
Description-en: dungeon exploration game - data
 A single player dungeon exploration game with many monsters, items and
 levels to find on the way down.
 .
 This package contains the data files.

Package: mutt
Description-md5: m1
Description-en: text-based mailreader
 Mutt is a small but very powerful text-based mail client for reading,
 sorting and answering electronic mail in a terminal.

Package: libfoo
Description-md5: l1
Description-en: library for frobbing widgets
 Foo frobs widgets quickly and safely, with a small API that many tools use.

Package: short
Description-md5: s1
Description-en: tiny
 Too short.
"""


def test_debian_sections_join_dedup_and_grouped_split(tmp_path):
    from lrdrop_cli.corpora import debian_sections as deb

    descriptions = deb.long_descriptions(TRANSLATIONS.splitlines(True))
    examples = deb.section_examples(PACKAGES.splitlines(True), descriptions, ("games", "mail", "net"))
    by_label = sorted((label, text.split(".")[0]) for text, label, _group in examples)
    # g1 sits under games and net: dropped; libs is not a chosen section; "short" is too short
    assert by_label == [("games", "dungeon exploration game - data"), ("mail", "text-based mailreader")]
    assert examples[0][0].startswith("dungeon exploration game - data. A single player dungeon")
    (tmp_path / "P").write_text(PACKAGES + "\nPackage: nethack-x\nSection: games\nDescription-md5: g3\n")
    (tmp_path / "T").write_text(
        TRANSLATIONS + "\nPackage: nethack-x\nDescription-md5: g3\nDescription-en: dungeon game - X\n"
        " A single player dungeon exploration game with many monsters, items and\n"
        " levels to find on the way down.\n .\n X11 front end.\n"
    )
    sizes = deb.build(str(tmp_path / "out"), ("games", "mail"), 0, 1, 1, str(tmp_path / "P"), str(tmp_path / "T"))
    # without net, g1 is games only: three nethack packages sharing their first paragraph, one split
    assert sizes in ({"test": 1, "valid": 0, "train": 3}, {"test": 3, "valid": 0, "train": 1})
    for split in ("train", "test"):
        labels = (tmp_path / "out" / f"{split}.label").read_text().split()
        assert labels in (["games"] * 3, ["mail"])
    with pytest.raises(ValueError, match="--sections: no packages .* in web"):
        deb.build(str(tmp_path / "o2"), ("games", "web"), 0, 1, 1, str(tmp_path / "P"), str(tmp_path / "T"))


def test_shrunken_classification_demo_end_to_end(tmp_path):
    """lrdrop-demo-classification on your own files: corpus -> spm -> binarize -> baseline and
    LR-Drop training -> test accuracy, macro-F1, predictions; a tiny model, a few updates."""
    from lrdrop_cli.corpora.toy import write_classification_corpus

    raw = write_classification_corpus(str(tmp_path / "raw"), (("train", 200),))
    out = tmp_path / "demo"
    small = "--encoder-layers 1 --encoder-embed-dim 32 --encoder-ffn-embed-dim 64 --log-interval 2"
    p = run(
        [
            tool("lrdrop-demo-classification"),
            "--out",
            str(out),
            "--input",
            f"{raw}/train.input0",
            "--labels",
            f"{raw}/train.label",
            "--vocab",
            "40",
            "--valid-size",
            "30",
            "--test-size",
            "40",
            "--updates",
            "6",
            "--warmup",
            "2",
            "--max-tokens",
            "500",
            "--train-args",
            small,
        ]
    )
    assert "test: 40 examples, 2 classes" in p.stdout and "GOLD" in p.stdout and "PRED" in p.stdout
    lrdrop_log = (out / "lrdrop-s1" / "train.log").read_text()
    assert all(f'"{t}"' in lrdrop_log for t in ("kl_loss", "hidden_loss", "attn_loss"))  # the mode's three terms
    assert '"kl_loss"' not in (out / "baseline-s1" / "train.log").read_text()
    runs = json.loads((out / "result.json").read_text())["runs"]
    assert set(runs) == {"baseline-s1", "lrdrop-s1"}
    # each score recomputed from the files the demo wrote, with scikit-learn
    from sklearn.metrics import f1_score

    gold = (out / "corpus" / "test.label").read_text().splitlines()
    for name, r in runs.items():
        pred = (out / name / "test.pred").read_text().splitlines()
        assert len(pred) == len(gold) == 40 and set(pred) <= set(gold)  # label names, not indices
        assert r["accuracy"] == pytest.approx(100 * sum(p == g for p, g in zip(pred, gold)) / 40)
        assert r["macro_f1"] == pytest.approx(100 * f1_score(gold, pred, average="macro"))
        # and fairseq's own accuracy on the binarized test set agrees: the names map back right
        best = str(out / name / "checkpoints" / "checkpoint_best.pt")
        plugin = ["--user-dir", os.path.join(ROOT, "lrdrop_fairseq")]
        validated = json_tail(fairseq_validate(str(out / "data-bin"), best, plugin, "sentence_prediction"), "test")
        assert r["accuracy"] == pytest.approx(float(validated["test_accuracy"]), abs=0.01)
    # another seed later: the earlier runs stay in the table and in result.json, untrained again
    p = run([tool("lrdrop-demo-classification"), "--out", str(out), "--modes", "baseline,lrdrop", "--seeds", "1,2",
             "--updates", "6", "--warmup", "2", "--max-tokens", "500", "--train-args", small])  # fmt: skip
    assert "(done already" in p.stdout and "baseline       2" in p.stdout
    rerun = json.loads((out / "result.json").read_text())["runs"]
    assert set(rerun) == {"baseline-s1", "lrdrop-s1", "baseline-s2", "lrdrop-s2"}
    assert rerun["baseline-s1"] == runs["baseline-s1"]
    p = run([tool("lrdrop-demo-classification"), "--out", str(out), "--modes", "nope"], check=False)
    assert p.returncode != 0 and "demo-classification: unknown --modes nope; choose from baseline, rdrop" in p.stdout
