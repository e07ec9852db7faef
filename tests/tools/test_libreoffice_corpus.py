"""lrdrop-build-libreoffice-corpus on a hand-made gettext catalog and hand-made help pages."""

import json
import os
import struct
import subprocess

import pytest
import sacrebleu

from lrdrop_cli.bin import build_libreoffice_corpus
from lrdrop_cli.corpora import libreoffice as L


def write_mo(path, entries):
    """A GNU .mo file (little-endian, no hash table) holding ``entries`` {msgid: msgstr}."""
    keys = sorted(entries)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(entries[k].encode() + b"\0" for k in keys)
    n = len(keys)
    start = 7 * 4 + 16 * n
    table_ids, table_strs, offset = [], [], 0
    for k in keys:
        table_ids += [len(k.encode()), start + offset]
        offset += len(k.encode()) + 1
    offset = 0
    for k in keys:
        table_strs += [len(entries[k].encode()), start + len(ids) + offset]
        offset += len(entries[k].encode()) + 1
    header = struct.pack("<7I", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    with open(path, "wb") as f:
        f.write(header + struct.pack(f"<{2 * n}I", *table_ids) + struct.pack(f"<{2 * n}I", *table_strs) + ids + strs)


CATALOG = {
    "": "Content-Type: text/plain; charset=UTF-8\n",  # the header: not a pair
    "~Open": "Ö~ffnen",  # accelerators on both sides
    "menu\x04_Save As": "Speichern _unter",  # a msgctxt prefix, GTK accelerators
    "Cannot open %1.": "%1 kann nicht geöffnet werden.",
    "OK": "OK",  # untranslated: dropped
    "%1 file\x00%1 files": "%1 Datei\x00%1 Dateien",  # plural forms: skipped
    "Page 1": "Seite 1",
    "Page 2": "Seite 2",  # normalises like "Page 1": same group
}

PAGE = """<html><body><div id="DisplayArea">
<h1 id="hd_id2" dir="auto">{title}</h1>
<p id="par_id1" class="paragraph">{par}</p>
<p id="{lonely}">{lonely_text}</p>
<p class="nothing">not alignable</p>
</div></body></html>"""


def make_root(tmp_path):
    root = tmp_path / "x"
    mo_dir = root / L.MO_DIR
    mo_dir.mkdir(parents=True)
    write_mo(mo_dir / "cui.mo", CATALOG)
    for lang, title, par, lonely, lonely_text in (
        ("en-US", "Formulas", 'Click <a href="x.html">here</a> to\n  start.', "par_id3", "Only in English."),
        ("de", "Formeln", 'Klicken Sie <a href="x.html">hier</a>, um zu beginnen.', "par_id4", "Nur Deutsch."),
    ):
        page = root / L.HELP_DIR / lang / "text" / "scalc" / "one.html"
        page.parent.mkdir(parents=True)
        page.write_text(PAGE.format(title=title, par=par, lonely=lonely, lonely_text=lonely_text), encoding="utf-8")
        other = root / L.HELP_DIR / lang / "text" / "shared" / "two.html"
        other.parent.mkdir(parents=True)
        formula = "=A1&amp;B1" if lang == "en-US" else "=A1&amp;B1 (verkettet)"
        other.write_text(
            f'<p id="par_id9">{formula}</p><h2 id="hd_id8">{"Page 1" if lang == "en-US" else "Seite 1"}</h2>',
            encoding="utf-8",
        )
    return str(root)


def test_interface_pairs_skip_header_plurals_and_context(tmp_path):
    root = make_root(tmp_path)
    pairs = sorted(L.interface_pairs([os.path.join(root, L.MO_DIR, "cui.mo")]))
    assert pairs == sorted(
        [
            ("Ö~ffnen", "~Open", "ui"),
            ("Speichern _unter", "_Save As", "ui"),
            ("%1 kann nicht geöffnet werden.", "Cannot open %1.", "ui"),
            ("OK", "OK", "ui"),
            ("Seite 1", "Page 1", "ui"),
            ("Seite 2", "Page 2", "ui"),
        ]
    )


def test_help_pairs_align_by_file_and_id_markup_dropped(tmp_path):
    root = make_root(tmp_path)
    pairs = sorted(L.help_pairs(os.path.join(root, L.HELP_DIR)))
    one, two = "help:text/scalc/one.html", "help:text/shared/two.html"
    # par_id3 (English only) and par_id4 (German only) have no partner; the class-only <p> no id
    assert [(de, " ".join(en.split()), g) for de, en, g in pairs] == sorted(
        [
            ("Formeln", "Formulas", one),
            ("Klicken Sie hier, um zu beginnen.", "Click here to start.", one),
            ("=A1&B1 (verkettet)", "=A1&B1", two),
            ("Seite 1", "Page 1", two),
        ]
    )


def test_element_texts_count_nested_tags_and_keep_an_ids_first_text():
    page = (
        '<div id="par_id1">a <div>b <div>c</div></div> d</div><p>not alignable</p>'
        '<p id="hd_id2">e</p><p id="hd_id2">again</p>'
        '<div id="par_id3"><p id="par_id4">inside</p> after</div>'  # an id inside an id: the outer one's text
    )
    assert L.element_texts(page) == {"par_id1": "a b c d", "hd_id2": "e", "par_id3": "inside after"}


def test_help_pairs_search_every_folder_depth_and_skip_pages_without_german(tmp_path):
    help_root = tmp_path / "help"
    for lang, text in (("en-US", "Deep"), ("de", "Tief")):
        page = help_root / lang / "text" / "sbasic" / "shared" / "03" / "deep.html"
        page.parent.mkdir(parents=True)
        page.write_text(f'<p id="par_id1">{text}</p>', encoding="utf-8")
    (help_root / "en-US" / "text" / "only_english.html").write_text('<p id="par_id1">Alone</p>', encoding="utf-8")
    assert L.help_pairs(str(help_root)) == [("Tief", "Deep", "help:text/sbasic/shared/03/deep.html")]


def test_clean_pairs_counts_each_step_and_strips_accelerators_only_in_the_interface():
    raw = [
        ("Ö~ffnen", "~Open", "ui"),
        ("Speichern _unter", "_Save As", "ui"),
        ("OK", "OK", "ui"),  # untranslated
        ("", "Empty", "ui"),
        ("eins zwei drei vier", "one two three four", "ui"),  # over max_words=3
        ("Leer", "", "ui"),
        ("eins zwei drei vier", "one two three", "ui"),  # German over max_words: dropped
        ("eins zwei drei", "one two three", "ui"),  # at max_words: kept
        ("=A1&B1 verketten", "=A1&B1", "help:f"),  # '&' is an operator here: kept
        ("Öffnen!", "Open", "help:g"),  # "Open" again (after cleaning): the more frequent German wins
        ("Öffnen", "Open", "help:h"),
    ]
    pairs, counts = L.clean_pairs(raw, max_words=3)
    assert counts == {
        "read": 11,
        "non-empty": 9,
        "translated (sides differ)": 8,
        "at most 3 words": 6,
        "one translation per English string": 4,
    }
    assert pairs == [
        ("Öffnen", "Open", "ui"),
        ("Speichern unter", "Save As", "ui"),
        ("eins zwei drei", "one two three", "ui"),
        ("=A1&B1 verketten", "=A1&B1", "help:f"),
    ]


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("Co_ntinuous facing", "Continuous facing"),  # GTK: inside a word
        ("_Save As", "Save As"),
        ("~Open", "Open"),
        ("&Open", "Open"),
        ("Save & Close", "Save & Close"),  # a real ampersand
        ("value %AVERAGE_VALUE (%STD_DEVIATION)", "value %AVERAGE_VALUE (%STD_DEVIATION)"),  # placeholders
        ("file__name or A2_3", "file__name or A2_3"),
    ],
)
def test_interface_accelerators_and_what_they_are_not(raw, cleaned):
    assert L.clean(raw, interface=True) == cleaned
    assert L.clean("user_lastname == 1 & 2") == "user_lastname == 1 & 2"  # help text, the default


def test_groups_link_normalised_strings_and_help_files():
    pairs = [
        ("Seite 1", "Page 1", "ui"),
        ("Seite 2", "Page 2", "ui"),  # same normalised strings as the first
        ("A", "a one", "help:f"),
        ("B", "b two", "help:f"),  # same help file as the third
        ("C", "c three", "ui"),
    ]
    g = L.groups(pairs)
    assert g[0] == g[1] and g[2] == g[3]
    assert len({g[0], g[2], g[4]}) == 3


def test_groups_link_pairs_by_their_normalised_german_alone():
    """Two interface strings with one German translation (digits masked, case folded) and
    unrelated English: only the German side links them, so that German near-duplicates cannot
    straddle the split; a third pair shares nothing."""
    pairs = [
        ("Datei 1 speichern", "Save file 1", "ui"),
        ("datei 2 SPEICHERN", "Store the second document", "ui"),  # the same German, normalised
        ("Drucken", "Print", "ui"),
    ]
    g = L.groups(pairs)
    assert g[0] == g[1] != g[2]


def synthetic(n):
    """``n`` pairs that stay distinct after normalisation (which masks digits): letter names."""
    names = [a + b for a in "abcdefgh" for b in "ijklmnop"][:n]
    return [(f"Satz {w} nummer", f"sentence {w} number", "ui") for w in names]


def test_split_keeps_groups_whole_and_seed_changes_it():
    pairs = synthetic(60) + [("Seite 1", "Page 1", "ui"), ("Seite 2", "Page 2", "ui")]
    splits = {seed: L.grouped_split(pairs, n_valid=10, n_test=10, seed=seed) for seed in (1, 2)}
    for s in splits.values():
        assert sum(len(v) for v in s.values()) == len(pairs)
        where = {en: name for name, part in s.items() for _, en in part}
        assert where["Page 1"] == where["Page 2"]
        assert 10 <= len(s["test"]) <= 11 and 10 <= len(s["valid"]) <= 11
    assert set(splits[1]["test"]) != set(splits[2]["test"])
    assert L.grouped_split(pairs, 10, 10, 1) == splits[1]  # the same seed, the same split
    with pytest.raises(ValueError, match="cannot hold out"):
        L.grouped_split(pairs, n_valid=40, n_test=40, seed=1)


def test_split_holds_out_groups_up_to_half_the_smaller_split():
    """n_valid 10, n_test 12: groups of up to 5 pairs may be held out, a group of 6 never."""
    six = [(f"Seite {i}", f"Page {i}", "ui") for i in range(6)]  # one group: digits are masked
    five = [(f"Datei {i}", f"File {i}", "ui") for i in range(5)]
    pairs = synthetic(60) + six + five
    held_out = set()
    for seed in range(1, 13):
        split = L.grouped_split(pairs, n_valid=10, n_test=12, seed=seed)
        where = {en: name for name, part in split.items() for _, en in part}
        assert {where[en] for _, en, _ in six} == {"train"}
        held_out |= {where[en] for _, en, _ in five} - {"train"}
    assert held_out == {"valid", "test"}


def test_translation_memory_finds_the_nearest_line_and_its_bleu():
    train = [
        ("Klicken Sie auf Speichern", "Click Save"),
        ("Wählen Sie Format - Zeichen", "Choose Format - Character"),
        ("Die Tabelle wird gedruckt", "The table is printed"),
    ]
    memory = L.TranslationMemory(train)
    score, index = memory.best("Wählen Sie Format - Absatz")  # 4 of its 5 tokens in line 1's 5
    assert index == 1 and score == pytest.approx(2 * 4 / 10)
    assert memory.best("völlig unbekannt") == (0.0, -1)
    assert memory.best("WÄHLEN sie format - absatz") == (score, 1)  # case folded
    assert L.TranslationMemory(train + train).best("Die Tabelle wird gedruckt") == (1.0, 2)  # a tie: the first
    test = [("Die Tabelle wird gedruckt", "The table is printed"), ("Klicken Sie auf Öffnen", "Click Open")]
    report = L.leakage_report(train, test)
    assert report["test_exact_german_in_train"] == 0.5 and report["test_fuzzy_ge_0.9"] == 0.5
    assert report["test_fuzzy_ge_0.7"] == 1.0  # 3 of 4 tokens of the second match line 0: 0.75
    expected = sacrebleu.corpus_bleu(["The table is printed", "Click Save"], [[en for _, en in test]]).score
    assert report["tm_bleu"] == pytest.approx(round(expected, 2))
    at_threshold = [("Wählen Sie Format - Absatz", "Choose Format - Paragraph")]  # similarity 0.8 exactly
    report = L.leakage_report(train, at_threshold, thresholds=(0.8,))
    assert report["test_fuzzy_ge_0.8"] == 1.0 and report["test_exact_german_in_train"] == 0.0


def test_translation_memory_shortlists_by_rare_shared_words():
    """With a one-line shortlist the line sharing the rarest word wins, though another shares
    more words: idf = log(5 / lines with the word): x, y 0.51 each; rare 1.61."""
    train = [("x y a", "0"), ("rare b", "1"), ("x c", "2"), ("y d", "3"), ("x y e", "4")]
    assert L.TranslationMemory(train, candidates=1).best("x y rare")[1] == 1
    assert L.TranslationMemory(train).best("x y rare")[1] == 0  # the default shortlist: the closest line


def test_translation_memory_chrf_by_hand():
    """The memory's English "abc" against the reference "abd" (spaces do not count): character
    1-grams match 2 of 3, 2-grams 1 of 2, 3-grams 0 of 1, so precision = recall = (2/3 + 1/2 + 0) / 3
    = 7/18 over the three orders both sides have, and chrF (beta 2) = 7/18 = 38.89."""
    report = L.leakage_report([("Die Tabelle wird gedruckt", "abc")], [("Die Tabelle wird gedruckt", "abd")])
    assert report["tm_chrf"] == 38.89
    # a test sentence sharing no word with the memory gets an empty hypothesis: chrF 0
    report = L.leakage_report([("Die Tabelle wird gedruckt", "abd")], [("völlig unbekannt", "abd")])
    assert report["tm_chrf"] == 0.0 and report["test_fuzzy_ge_0.7"] == 0.0


def test_build_end_to_end_writes_splits_symbols_and_report(tmp_path, monkeypatch):
    root = make_root(tmp_path)
    out = tmp_path / "corpus"
    report = L.build(str(out), root, n_valid=1, n_test=1, seed=1, max_words=60)
    assert report["read"] == {"interface": 6, "help": 4}
    assert report["cleaning"]["one translation per English string"] == 8  # 9 translated, "Page 1" twice
    lines = {s: (out / f"{s}.en").read_text(encoding="utf-8").splitlines() for s in ("train", "valid", "test")}
    de = {s: (out / f"{s}.de").read_text(encoding="utf-8").splitlines() for s in ("train", "valid", "test")}
    assert all(len(lines[s]) == len(de[s]) for s in lines) and sum(map(len, lines.values())) == 8
    english_words = sum(len(line.split()) for part in lines.values() for line in part)
    assert report["mean_english_words"] == round(english_words / 8, 2) and 1 < report["mean_english_words"] < 3
    assert "Open" in sum(lines.values(), []) and "~Open" not in sum(lines.values(), [])
    assert json.loads((out / "report.json").read_text()) == report
    source = (out / "SOURCE.txt").read_text()
    assert "MPL-2.0" in source and "libreoffice-l10n-de" in source and "translation-memory floor" in source
    # %1 occurs once: below the default minimum count, so nothing is protected at this size
    assert (out / "protected_symbols.txt").read_text() == ""
    assert L.protected_symbols([("x", "%1 and $(ERR)")] * 5) == ["%1", "$(ERR)"]
    monkeypatch.setattr(L, "protected_symbols", lambda pairs: ["%1", "$(ERR)"])
    L.build(str(tmp_path / "again"), root, n_valid=1, n_test=1, seed=1, max_words=60, leakage=False)
    assert (tmp_path / "again" / "protected_symbols.txt").read_text() == "%1\n$(ERR)\n"  # one a line


def test_fetch_reuses_unpacked_packages_only_when_both_halves_are_there(tmp_path, monkeypatch):
    downloads = []
    monkeypatch.setattr(L, "apt_download", lambda packages, folder, instead: downloads.append(packages) or {})
    monkeypatch.setattr(L, "unpack", lambda debs, root: root)
    root = tmp_path / "x"
    (root / L.HELP_DIR / "en-US").mkdir(parents=True)  # the English help without the catalogs: fetch
    assert L.fetch_packages(str(tmp_path)) == str(root) and downloads == [L.PACKAGES]
    (root / L.HELP_DIR / "en-US").rmdir()
    (root / L.MO_DIR).mkdir(parents=True)  # the catalogs without the English help: fetch again
    assert L.fetch_packages(str(tmp_path)) == str(root) and downloads == [L.PACKAGES] * 2
    (root / L.HELP_DIR / "en-US").mkdir(parents=True)
    assert L.fetch_packages(str(tmp_path)) == str(root) and downloads == [L.PACKAGES] * 2  # no third download


def test_newest_deb_compares_version_numbers_as_numbers(tmp_path):
    from lrdrop_cli.corpora.common import newest_deb

    assert newest_deb(str(tmp_path), "libreoffice-help-de") is None
    for version in ("1%3a7.4.9-1", "1%3a7.4.10-1", "1%3a7.4.10-0"):
        (tmp_path / f"libreoffice-help-de_{version}_all.deb").write_bytes(b"")
    (tmp_path / "libreoffice-help-de-x_9.9_all.deb").write_bytes(b"")  # another package's
    newest = tmp_path / "libreoffice-help-de_1%3a7.4.10-1_all.deb"
    assert newest_deb(str(tmp_path), "libreoffice-help-de") == str(newest)


def test_apt_download_fetches_only_the_missing_packages_and_returns_the_newest(tmp_path, monkeypatch):
    from lrdrop_cli.corpora import common

    folder, fetched, returncode = tmp_path / "new", [], {"value": 0}

    def apt_get(command, cwd, **kwargs):  # "downloads" each package asked for that the archive has
        fetched.append(command[2:])
        for package in command[2:]:
            if package != "gone":
                (folder / f"{package}_1.0_all.deb").write_bytes(b"")
        return subprocess.CompletedProcess(command, returncode["value"], "apt says\n")

    monkeypatch.setattr(common.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(common.subprocess, "run", apt_get)
    with pytest.raises(RuntimeError, match="(?s)'apt-get download gone' failed:\napt says.*apt-get update.*INSTEAD"):
        common.apt_download(["gone"], str(folder), "INSTEAD")  # the folder is made; apt finds nothing
    for version in ("2.9", "2.10"):
        (folder / f"b_{version}_all.deb").write_bytes(b"")
    debs = common.apt_download(["a", "b", "c"], str(folder), "")
    assert fetched[1:] == [["a", "c"]]
    assert debs == {
        "a": str(folder / "a_1.0_all.deb"),
        "b": str(folder / "b_2.10_all.deb"),
        "c": str(folder / "c_1.0_all.deb"),
    }
    assert common.apt_download(["a", "b"], str(folder), "") == {"a": debs["a"], "b": debs["b"]}
    assert fetched[1:] == [["a", "c"]]  # all there: apt-get is not run again
    returncode["value"] = 100
    with pytest.raises(RuntimeError, match="'apt-get download d' failed"):
        common.apt_download(["d"], str(folder), "")  # a failed apt-get, even if it left a file
    for absent in ("apt-get", "dpkg-deb"):
        monkeypatch.setattr(common.shutil, "which", lambda name: None if name == absent else f"/usr/bin/{name}")
        with pytest.raises(RuntimeError, match=r"apt-get/dpkg-deb not found \(not a Debian/Ubuntu system\). INSTEAD"):
            common.apt_download(["a"], str(folder), "INSTEAD")


def test_deb_folder_unpacks_each_packages_newest_deb(tmp_path, monkeypatch):
    unpacked = []
    monkeypatch.setattr(L, "unpack", lambda debs, root: unpacked.append(debs) or root)
    for package in L.PACKAGES:
        for version in ("7.4.9", "7.4.10"):
            (tmp_path / f"{package}_{version}_all.deb").write_bytes(b"")
    assert L.unpack_folder(str(tmp_path), "ROOT") == "ROOT"
    assert unpacked == [[str(tmp_path / f"{package}_7.4.10_all.deb") for package in L.PACKAGES]]


def test_command_reports_a_missing_package_folder(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no libreoffice-l10n-de_"):
        build_libreoffice_corpus.main([str(tmp_path / "out"), "--debs", str(tmp_path)])


def test_demo_joins_corpora_split_by_split(tmp_path):
    from lrdrop_cli.pipelines import translation as demo

    for part, symbol in (("ding", None), ("libreoffice", "%1")):
        d = tmp_path / part
        d.mkdir()
        for split in ("train", "valid", "test"):
            (d / f"{split}.de").write_text(f"{part} {split} de\n", encoding="utf-8")
            (d / f"{split}.en").write_text(f"{part} {split} en\n", encoding="utf-8")
        (d / "SOURCE.txt").write_text(f"{part} licence\n")
        if symbol:
            (d / demo.PROTECTED_SYMBOLS).write_text(symbol + "\n")
    demo.join_corpora(str(tmp_path), ("ding", "libreoffice"), ("de", "en"))
    assert (tmp_path / "test.en").read_text() == "ding test en\nlibreoffice test en\n"
    assert (tmp_path / "train.de").read_text() == "ding train de\nlibreoffice train de\n"
    assert (tmp_path / "SOURCE.txt").read_text() == "ding licence\nlibreoffice licence\n"
    assert (tmp_path / demo.PROTECTED_SYMBOLS).read_text() == "%1\n"


def test_protected_symbols_stay_one_sentencepiece_token(tmp_path):
    import sentencepiece as spm

    from lrdrop_cli import steps

    raw, spm_dir = tmp_path / "raw", tmp_path / "spm"
    raw.mkdir()
    words = "open save print close the file table chart".split()
    for split in ("train", "valid", "test"):
        for lang in ("de", "en"):
            lines = [f"{words[i % 8]} %PRODUCTNAME {words[(i * 3) % 8]} $(ERR)" for i in range(200)]
            (raw / f"{split}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (raw / steps.PROTECTED_SYMBOLS).write_text("%PRODUCTNAME\n$(ERR)\n")
    model = steps.sentencepiece(60, str(raw), str(spm_dir))
    pieces = spm.SentencePieceProcessor(model_file=model).encode("print %PRODUCTNAME now $(ERR)", out_type=str)
    assert "%PRODUCTNAME" in pieces and "$(ERR)" in pieces
    assert (spm_dir / "test.en").read_text().split("\n")[0].split().count("%PRODUCTNAME") == 1


def test_common_split_by_group_fills_test_then_valid_with_whole_groups():
    """keys a a b c c c d e f g: every group in one split, test then valid filled to at least
    their sizes, the rest in train, each index once; 'c' (3 items, over max_group 2) is never
    held out, whatever the seed; indices in order within a group."""
    from lrdrop_cli.corpora.common import split_by_group

    keys = list("aabcccdefg")
    seen_tests = set()
    for seed in range(1, 9):
        s = split_by_group(keys, n_valid=2, n_test=2, seed=seed, max_group=2)
        assert sorted(s["test"] + s["valid"] + s["train"]) == list(range(10))
        assert {keys[i] for i in s["test"]}.isdisjoint({keys[i] for i in s["valid"] + s["train"]})
        assert {keys[i] for i in s["valid"]}.isdisjoint({keys[i] for i in s["train"]})
        assert 2 <= len(s["test"]) <= 3 and 2 <= len(s["valid"]) <= 3  # one group of 1 or 2 too many at most
        assert {3, 4, 5} <= set(s["train"]) and s["train"][s["train"].index(3) : s["train"].index(3) + 3] == [3, 4, 5]
        seen_tests.add(tuple(s["test"]))
    assert len(seen_tests) > 1  # the seed decides
    assert split_by_group(keys, 2, 2, seed=3, max_group=2) == split_by_group(keys, 2, 2, seed=3, max_group=2)
    with pytest.raises(ValueError, match="whole groups"):
        split_by_group(keys, n_valid=4, n_test=4, seed=1, max_group=1)  # 5 single items cannot fill 8
