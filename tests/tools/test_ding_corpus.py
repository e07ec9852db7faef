"""lrdrop-build-ding-corpus on a hand-made dictionary: alignment, tags, splits, seeds, leakage."""

import pytest

from lrdrop_cli.corpora import ding
from lrdrop_cli.corpora.common import shuffled_split

DING = """\
# Version :: devel 2023-01-30
# License :: GPL Version 2 or later; GNU General Public License
Abendessen {n} | Das Abendessen hat mir geschmeckt. :: supper; dinner | I enjoyed my supper.
Hund {m} | Der Hund bellt laut. | Hunde {pl} :: dog | The dog barks loudly. | dogs
Katze {f} | Die Katze schläft {v} [ugs.] gern. ; Die Katze ruht. :: cat | The cat likes to sleep [coll.]. ; The cat rests.
Misaligned | Das ist ein Satz. :: misaligned
Doppelt | Das Abendessen hat mir geschmeckt. :: twice | Supper was great, thanks.
Kurz | Ja gut. :: short | Yes fine.
klein | das ist klein geschrieben. :: small | this is lower case.
"""


def test_sentence_pairs_alignment_tags_dedup():
    pairs = ding.sentence_pairs(DING.splitlines(True))
    assert pairs == [
        ("Das Abendessen hat mir geschmeckt.", "I enjoyed my supper."),
        ("Der Hund bellt laut.", "The dog barks loudly."),
        ("Die Katze schläft gern.", "The cat likes to sleep."),
    ]


def test_split_is_fixed_by_seed_and_disjoint():
    pairs = [(f"Satz Nummer {i}.", f"Sentence number {i}.") for i in range(50)]
    a = shuffled_split(pairs, 5, 10, seed=1)
    b = shuffled_split(pairs, 5, 10, seed=1)
    c = shuffled_split(pairs, 5, 10, seed=2)
    assert a == b and a != c
    assert [len(a[k]) for k in ("train", "valid", "test")] == [35, 5, 10]
    assert set(a["train"]) | set(a["valid"]) | set(a["test"]) == set(pairs)
    with pytest.raises(ValueError, match="cannot hold out"):
        shuffled_split(pairs, 30, 30, seed=1)
    with pytest.raises(ValueError, match="only 50 pairs: cannot hold out 20 valid \\+ 30 test"):
        shuffled_split(pairs, 20, 30, seed=1)  # nothing left to train on
    assert len(shuffled_split(pairs, 20, 29, seed=1)["train"]) == 1


def test_build_writes_aligned_files(tmp_path):
    src = tmp_path / "de-en"
    lines = [f"Wort{i} | Das ist Satz Nummer {i}. :: word{i} | This is sentence number {i}.\n" for i in range(30)]
    src.write_text("".join(lines), encoding="utf-8")
    sizes = ding.build(str(tmp_path / "out"), str(src), n_valid=3, n_test=4, seed=1)
    assert sizes == {"test": 4, "valid": 3, "train": 23}
    de = (tmp_path / "out" / "train.de").read_text(encoding="utf-8").splitlines()
    en = (tmp_path / "out" / "train.en").read_text(encoding="utf-8").splitlines()
    assert all(d.split()[-1] == e.split()[-1] for d, e in zip(de, en))
    assert "GPL" in (tmp_path / "out" / "SOURCE.txt").read_text()


def test_longer_sentences_go_to_train_only(tmp_path):
    short = [f"Wort{i} | Das ist Satz {i}. :: word{i} | This is sentence {i}.\n" for i in range(20)]
    long = [
        f"Lang{i} | Das ist ein viel zu langer Satz {i}. :: long{i} | This is a far too long sentence {i}.\n"
        for i in range(6)
    ]
    (tmp_path / "a.txt").write_text("".join(short + long), encoding="utf-8")
    base = ding.build(str(tmp_path / "a"), str(tmp_path / "a.txt"), n_valid=3, n_test=4, seed=1, max_words=5)
    assert base == {"test": 4, "valid": 3, "train": 13}
    held_out = (tmp_path / "a" / "test.de").read_text(encoding="utf-8").splitlines()[0]
    # a long entry, first in the file, whose German side is a held-out sentence must not reach train
    clash = f"Doppel | {held_out} :: double | This is that sentence said at far greater length.\n"
    (tmp_path / "b.txt").write_text("".join([clash] + short + long), encoding="utf-8")
    more = ding.build(
        str(tmp_path / "b"), str(tmp_path / "b.txt"), n_valid=3, n_test=4, seed=1, max_words=5, train_max_words=12
    )
    assert more == {"test": 4, "valid": 3, "train": 13 + 6}
    for part in ("valid", "test"):  # the same held-out sets as without the longer sentences
        assert (tmp_path / "b" / f"{part}.de").read_bytes() == (tmp_path / "a" / f"{part}.de").read_bytes()
    train_de = (tmp_path / "b" / "train.de").read_text(encoding="utf-8").splitlines()
    assert sum("langer Satz" in d for d in train_de) == 6 and held_out not in train_de


def test_phrase_pairs_are_never_sentences():
    """The phrase builder's own check: dictionary sub-entries that are sentences (capitalised,
    final punctuation, 3+ words, both sides short enough to be phrases) never come back as
    phrases, whatever else they share with the phrases; only the words and short phrases do."""
    lines = [
        "Das Haus ist rot. | Haus {n} :: The house is red. | house\n",
        "Wir gehen heim! | nach Hause gehen :: We go home! | to go home\n",
        "Ist es rot? | rot :: Is it red? | red\n",
    ]
    assert ding.phrase_pairs(lines) == [("Haus", "house"), ("nach Hause gehen", "to go home"), ("rot", "red")]


def test_phrase_pairs_hold_up_to_six_words_a_side_by_default():
    lines = ["eins zwei drei vier fünf sechs :: one two three four five six\n"]
    lines += ["eins zwei drei vier fünf sechs sieben :: one two\n", "acht neun :: one two three four five six seven\n"]
    assert ding.phrase_pairs(lines) == [("eins zwei drei vier fünf sechs", "one two three four five six")]


def test_fetch_reuses_the_unpacked_dictionary(tmp_path, monkeypatch):
    downloads = []
    monkeypatch.setattr(ding, "apt_download", lambda packages, folder, instead: downloads.append(packages) or {})
    monkeypatch.setattr(ding, "unpack", lambda debs, root: root)
    extracted = tmp_path / "x" / ding.DING_IN_DEB
    assert ding.fetch_ding(str(tmp_path)) == str(extracted) and downloads == [["trans-de-en"]]
    extracted.parent.mkdir(parents=True)
    extracted.write_text("", encoding="utf-8")
    assert ding.fetch_ding(str(tmp_path)) == str(extracted) and downloads == [["trans-de-en"]]  # not again


def test_dictionary_phrases_keep_valid_and_test_as_they_are(tmp_path):
    """--phrases adds word/phrase entries to train only: valid/test are the same with and without
    them, and no valid or test line is in train (the phrase builder's own refusal of sentences
    is tested on its own above: here the known-words filter would also catch them)."""
    lines = [f"Haus{i} | Das Haus {i} ist rot. :: house{i} | The house {i} is red.\n" for i in range(40)]
    lines += [f"Das Haus {i} :: the house {i}\n" for i in range(40)]  # phrases that share the sentences' words
    src = tmp_path / "de-en"
    src.write_text("".join(lines), encoding="utf-8")
    plain = ding.build(str(tmp_path / "plain"), str(src), n_valid=5, n_test=5, seed=1)
    with_phrases = ding.build(str(tmp_path / "phr"), str(src), n_valid=5, n_test=5, seed=1, phrases=20)
    assert with_phrases["train"] > plain["train"]
    for split in ("valid", "test"):
        assert (tmp_path / "plain" / f"{split}.de").read_text() == (tmp_path / "phr" / f"{split}.de").read_text()
    held_out = {x for split in ("valid", "test") for x in (tmp_path / "phr" / f"{split}.de").read_text().splitlines()}
    assert not held_out & set((tmp_path / "phr" / "train.de").read_text().splitlines())
    other_seed = ding.build(str(tmp_path / "s2"), str(src), n_valid=5, n_test=5, seed=2)
    assert (
        other_seed == plain
        and (tmp_path / "s2" / "test.de").read_text() != (tmp_path / "plain" / "test.de").read_text()
    )
