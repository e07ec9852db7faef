"""Summarisation: ROUGE scorer, Debian corpus builder, CNN/DM BPE, shrunken bart_lrdrop demo."""

import json
import os
import random
import subprocess
import sys

import pytest
from conftest import ROOT, curve_panels, run, tool

from lrdrop_cli.corpora import debian_summaries as deb
from lrdrop_cli.metrics import rouge, split_sentences

INDEX = """\
Package: libfoo1
Description-md5: 1
Description-en: library for frobbing widgets
 Foo frobs widgets quickly and safely, with a small API
 that many other tools use.
 .
 This package contains the shared library.

Package: libfoo-dev
Description-md5: 2
Description-en: library for frobbing widgets - development files
 Foo frobs widgets quickly and safely, with a small API
 that many other tools use.
 .
 This package contains the development files.

Package: libfoo-dup
Description-md5: 3
Description-en: a duplicate description
 Foo frobs widgets quickly and safely, with a small API
 that many other tools use.
 .
 This package contains the shared library.

Package: tiny
Description-md5: 4
Description-en: too short to summarise
 Short text.

Package: bar
Description-md5: 5
Description-en: Bar game
 Bar is a game of skill where players stack many little blocks as high as they can.
"""


def test_rouge_hand_computed_values():
    # hyp "the cat sat" vs ref "the cat sat on the mat": unigrams P 3/3 R 3/6 -> F 2/3;
    # bigrams P 2/2 R 2/5 -> F 4/7; LCS 3 -> as ROUGE-1
    s = rouge(["the cat sat"], ["the cat sat on the mat"])
    assert s["rouge1"] == pytest.approx(200 / 3) and s["rouge2"] == pytest.approx(400 / 7)
    assert s["rougeL"] == pytest.approx(200 / 3)
    # sentence order: ROUGE-L (one sequence) LCS 3 of 6 -> 50; ROUGE-Lsum (per sentence union) -> 100
    s = rouge(["the cat sat. the dog ran."], ["the dog ran. the cat sat."])
    assert s["rougeL"] == pytest.approx(50) and s["rougeLsum"] == pytest.approx(100)
    # stemming: cats/cat, running/runs -> cat, run: P 2/2 R 2/3 -> F 0.8
    assert rouge(["cats running"], ["the cat runs"])["rouge1"] == pytest.approx(80)
    assert rouge(["cats running"], ["the cat runs"], use_stemmer=False)["rouge1"] == pytest.approx(0)
    # averaged over summaries, not pooled
    assert rouge(["a b", "x"], ["a b", "y"])["rouge1"] == pytest.approx(50)


def test_sentence_split_for_rouge_lsum():
    assert split_sentences("One here. Two there! <n> three") == "One here.\nTwo there!\nthree"


def test_score_rouge_cli_refuses_mismatched_files(tmp_path):
    (tmp_path / "h").write_text("a b\nc d\n")
    (tmp_path / "r").write_text("a b\n")
    p = run([tool("lrdrop-score-rouge"), str(tmp_path / "h"), str(tmp_path / "r")], check=False)
    assert p.returncode != 0 and "2 hypotheses but 1 references" in p.stdout and "Traceback" not in p.stdout
    (tmp_path / "r").write_text("a b\nc e\n")
    p = run([tool("lrdrop-score-rouge"), str(tmp_path / "h"), str(tmp_path / "r"), "--json", str(tmp_path / "s.json")])
    assert "ROUGE-1 75.00" in p.stdout
    assert json.loads((tmp_path / "s.json").read_text())["rouge2"] == 50.0


def test_debian_index_parsing_dedup_and_grouped_split():
    records = deb.parse_index(INDEX.splitlines(True))
    assert [r[0] for r in records] == ["libfoo1", "libfoo-dev", "libfoo-dup", "tiny", "bar"]
    assert records[0][1] == "library for frobbing widgets"
    assert records[0][2] == [
        "Foo frobs widgets quickly and safely, with a small API that many other tools use.",
        "This package contains the shared library.",
    ]
    pairs = deb.summary_pairs(records, min_words=10)
    # libfoo-dup repeats libfoo1's description; tiny is too short
    assert [p[1] for p in pairs] == [
        "library for frobbing widgets",
        "library for frobbing widgets - development files",
        "Bar game",
    ]
    splits = deb.grouped_split(pairs, n_valid=0, n_test=1, seed=1)
    # the two libfoo packages share their first paragraph: never split across train/test
    foo_splits = {name for name, ps in splits.items() for d, s in ps if d.startswith("Foo")}
    assert len(foo_splits) == 1
    assert sum(len(v) for v in splits.values()) == 3 and splits["test"] and not splits["valid"]
    assert splits == deb.grouped_split(pairs, n_valid=0, n_test=1, seed=1)  # fixed by the seed


def test_summary_pairs_need_fifteen_description_words_by_default():
    words = [f"w{i}" for i in range(15)]
    records = [("long", "a synopsis", [" ".join(words)]), ("short", "a synopsis", [" ".join(words[1:])])]
    assert [p[0] for p in deb.summary_pairs(records)] == [" ".join(words)]


def test_debian_index_fetched_once_from_apts_largest_list(tmp_path, monkeypatch):
    """fetch_index runs apt-get update into a private lists folder with English descriptions
    only, keeps the largest matching list (bookworm main, not its updates) decompressed by
    apt-helper, reuses it afterwards, and says what failed and what to do otherwise."""
    calls = []
    state = {"returncode": 0, "lists": {"bookworm_main_i18n_Translation-en": "big index"}}
    state["lists"]["bookworm-updates_main_i18n_Translation-en"] = "tiny"

    def fake_run(cmd, stdout=None, **kwargs):
        calls.append(cmd[:2])
        if cmd[0] == "apt-get":
            lists = cmd[cmd.index("-o") + 1].split("=", 1)[1]
            assert os.path.isdir(os.path.join(lists, "partial"))  # apt-get refuses to run without it
            assert open(cmd[cmd.index("-c") + 1]).read() == 'Acquire::Languages "en";\n'
            for name, text in state["lists"].items():
                with open(os.path.join(lists, f"deb.debian.org_debian_dists_{name}"), "w") as f:
                    f.write(text)
            return subprocess.CompletedProcess(cmd, state["returncode"], "apt says\n")
        assert cmd[:2] == ["/usr/lib/apt/apt-helper", "cat-file"]
        stdout.write(open(cmd[2], "rb").read().upper())  # "decompressed"
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(deb.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(deb.subprocess, "run", fake_run)
    text = deb.fetch_index(str(tmp_path / "dl"))
    assert text == str(tmp_path / "dl" / "Translation-en.txt") and open(text).read() == "BIG INDEX"
    assert not os.path.exists(text + ".tmp")
    assert deb.fetch_index(str(tmp_path / "dl")) == text and len(calls) == 2  # fetched once
    state["returncode"] = 100
    with pytest.raises(RuntimeError, match="(?s)did not fetch Translation-en:\napt says.*--index FILE"):
        deb.fetch_index(str(tmp_path / "failed"))  # apt-get failed, whatever it left
    state["returncode"], state["lists"] = 0, {}
    with pytest.raises(RuntimeError, match="did not fetch Translation-en"):
        deb.fetch_index(str(tmp_path / "empty"))  # apt-get ran but fetched no English descriptions
    monkeypatch.setattr(deb.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get not found .* pass --index FILE"):
        deb.fetch_index(str(tmp_path / "no_apt"))


def test_gpt2_bpe_encoding_matches_fairseq_encoder(tmp_path):
    """cnndm_text.py bpe: same ids as fairseq's GPT-2 encoder, line-aligned, empty lines kept."""
    # a 4-merge byte-level BPE: enough to check the wiring against fairseq's own encoder
    from fairseq.data.encoders.gpt2_bpe_utils import bytes_to_unicode

    from lrdrop_cli import cnndm_text

    chars = list(bytes_to_unicode().values())
    merges = [("t", "h"), ("th", "e"), ("Ġ", "c"), ("Ġc", "a")]
    vocab = {c: i for i, c in enumerate(chars)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    (tmp_path / "encoder.json").write_text(json.dumps(vocab))
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    (tmp_path / "in.txt").write_text("the cat\n\nthe the\n")
    cnndm_text.bpe(
        str(tmp_path / "encoder.json"),
        str(tmp_path / "vocab.bpe"),
        str(tmp_path / "in.txt"),
        str(tmp_path / "out.txt"),
        workers=1,
    )
    lines = (tmp_path / "out.txt").read_text().split("\n")
    assert lines[1] == "" and len(lines) == 4
    the, ca = vocab["the"], vocab["Ġca"]
    assert lines[0] == f"{the} {ca} {vocab['t']}"
    assert lines[2] == f"{the} {vocab['Ġ']} {the}"


def test_cnndm_recipe_refuses_missing_data_and_bad_mode(tmp_path):
    train = os.path.join(ROOT, "examples", "cnndm", "train.sh")
    p = run(["bash", train, "nonsense"], check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train, "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "examples/cnndm/prepare.sh" in p.stdout
    (tmp_path / "dict.source.txt").write_text("")
    p = run(["bash", train, "lrdrop"], env={"DATA": str(tmp_path), "BART": str(tmp_path / "no.pt")}, check=False)
    assert p.returncode == 1 and "bart.large.tar.gz" in p.stdout
    gen = os.path.join(ROOT, "examples", "cnndm", "generate.sh")
    p = run(["bash", gen, str(tmp_path / "dict.source.txt"), str(tmp_path)], check=False)
    assert p.returncode == 1 and "prepare.sh" in p.stdout


def _index_fixture(path, n=360, seed=0):
    """A Translation-en file of synthetic packages whose synopsis is recoverable from the text."""
    rng = random.Random(seed)
    kinds = ["library", "tool", "game", "editor", "server", "plugin"]
    topics = ["images", "audio", "network", "fonts", "maps", "email", "math", "chess"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            k, t = rng.choice(kinds), rng.choice(topics)
            filler = " ".join(
                rng.choice(topics + kinds + ["the", "a", "of", "fast"]) for _ in range(rng.randint(12, 30))
            )
            f.write(
                f"Package: pkg{i}\nDescription-md5: {i}\nDescription-en: {k} for {t}\n"
                f" Pkg{i} is a {k} for {t}. {filler}.\n .\n It is number {i}.\n\n"
            )


def test_shrunken_summarization_demo_end_to_end(tmp_path):
    """lrdrop-demo-summarization: corpus -> spm -> binarize -> bart_lrdrop + lr_drop with
    --truncate-source -> beam search -> ROUGE -> plot, tiny model, a few updates."""
    _index_fixture(tmp_path / "Translation-en")
    out = tmp_path / "demo"
    small = (
        "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
        "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --log-interval 4"
    )
    cmd = [
        tool("lrdrop-demo-summarization"),
        "--out",
        str(out),
        "--index",
        str(tmp_path / "Translation-en"),
        "--vocab",
        "120",
        "--valid-size",
        "20",
        "--test-size",
        "25",
        "--max-source-tokens",
        "24",
        "--updates",
        "12",
        "--warmup",
        "4",
        "--max-tokens",
        "600",
        "--train-args",
        small,
    ]
    p = run(cmd)
    log = (out / "train.log").read_text()
    assert '"kl_loss"' in log and '"hidden_loss"' in log and '"attn_loss"' in log
    assert "BARTLRDropModel" in log and "'truncate_source': True" in log
    assert "ROUGE on test (25 summaries" in p.stdout and "not\n expected to summarise well" in p.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["test_summaries"] == 25 and all(0 <= result[k] <= 100 for k in ("rouge1", "rouge2", "rougeLsum"))
    hyps = (out / "test.hyp.target").read_text().splitlines()
    assert len(hyps) == 25
    # ROUGE-1/2 recomputed from the files the demo wrote, with rouge-score directly
    from rouge_score import rouge_scorer

    refs = (out / "corpus" / "test.target").read_text().splitlines()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=True)
    scores = [scorer.score(r, h) for r, h in zip(refs, hyps)]
    for key in ("rouge1", "rouge2"):
        assert result[key] == pytest.approx(100 * sum(s[key].fmeasure for s in scores) / 25, abs=0.01)
    # descriptions run past --max-source-tokens 24, so truncation was needed (and did not fail)
    assert max(len(line.split()) for line in (out / "spm" / "test.source").read_text().splitlines()) > 24
    assert curve_panels(out / "curves.png") == 5  # loss, nll_loss, kl_loss, hidden_loss, attn_loss
    assert run(cmd).stdout.count("(done already") == 4

    p = run(cmd[:1] + ["--out", str(tmp_path / "bad"), "--source", str(tmp_path / "Translation-en")], check=False)
    assert p.returncode != 0 and "give both --source and --target" in p.stdout


def test_cnndm_update_freq_makes_the_papers_batch():
    from lrdrop_cli import cnndm_text

    # fairseq's BART recipe (8 x 2048 x 4) and R-Drop's (4 x 1024 x 16): 65,536 tokens per update
    assert cnndm_text.update_freq(2048, 8) == 4
    assert cnndm_text.update_freq(1024, 4) == 16
    assert cnndm_text.update_freq(1024, 1) == 64
    with pytest.raises(ValueError, match="MAX_TOKENS 1000"):
        cnndm_text.update_freq(1000, 1)
    with pytest.raises(ValueError, match="whole multiple"):
        cnndm_text.update_freq(65536, 2)  # 0.5 updates
    for max_tokens, gpus in ((0, 1), (1024, 0), (-1024, -1)):
        with pytest.raises(
            ValueError, match=rf"MAX_TOKENS \({max_tokens}\) and the GPU count \({gpus}\) must be positive"
        ):
            cnndm_text.update_freq(max_tokens, gpus)


def test_cnndm_update_freq_command_as_the_recipe_calls_it():
    command = [sys.executable, "-m", "lrdrop_cli.cnndm_text", "update-freq", "--max-tokens", "1024"]
    assert run(command + ["--gpus", "4"], cwd=ROOT).stdout.strip() == "16"
    assert run(command + ["--gpus", "2", "--tokens-per-update", "4096"], cwd=ROOT).stdout.strip() == "2"
    p = run(command + ["--gpus", "3"], cwd=ROOT, check=False)
    assert p.returncode == 1 and p.stdout.startswith("cnndm_text update-freq: 65536 tokens per update")
    assert "Traceback" not in p.stdout


def test_cnndm_fetch_needs_nothing_when_the_raw_files_exist(tmp_path, monkeypatch, capsys):
    from lrdrop_cli import cnndm_text

    for split in ("train", "val", "test"):
        for side in ("source", "target"):
            (tmp_path / f"{split}.{side}").write_text("x\n")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # an import of pyarrow would fail
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    cnndm_text.main(["fetch", str(tmp_path)])
    assert "already has every split" in capsys.readouterr().out


def test_cnndm_fetch_writes_one_line_per_article_from_the_hubs_parquet(tmp_path, monkeypatch, capsys):
    """fetch from a file:// mirror holding the hub's five parquet files: each split's articles and
    highlights in file order, one line each; cached parquet is not downloaded again, a split
    already written is not rewritten, and an unreachable mirror is one message naming CNNDM_URL."""
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    from lrdrop_cli import cnndm_text

    hub = tmp_path / "hub"
    hub.mkdir()
    for split, names in cnndm_text.PARQUET.items():
        for k, name in enumerate(names):
            article, highlights = f"{split} {k}  article\nline two", f"{split} {k} one.\nTwo."
            rows = {"article": [article], "highlights": [highlights], "id": ["x"]}  # fetch does not read "id"
            pq.write_table(pa.table(rows), hub / name)
    monkeypatch.setattr(cnndm_text, "HUB", hub.as_uri())
    raw = tmp_path / "raw"
    cnndm_text.main(["fetch", str(raw)])
    assert (raw / "train.source").read_text() == "".join(f"train {k} article line two\n" for k in range(3))
    assert (raw / "train.target").read_text() == "".join(f"train {k} one. Two.\n" for k in range(3))
    assert (raw / "val.source").read_text() == "val 0 article line two\n"
    assert (raw / "test.target").read_text() == "test 0 one. Two.\n"
    out = capsys.readouterr().out
    assert out.count("[cnndm] downloading file://") == 5 and "[cnndm] train: 3 article/summary pairs" in out
    (raw / "train.source").write_text("kept\n")
    (raw / "test.source").unlink()
    (raw / "test.target").unlink()
    cnndm_text.main(["fetch", str(raw)])  # test again, from the cached parquet; train and val as they are
    assert "downloading" not in capsys.readouterr().out
    assert (raw / "train.source").read_text() == "kept\n" and (raw / "test.target").read_text() == "test 0 one. Two.\n"
    monkeypatch.setattr(cnndm_text, "HUB", (tmp_path / "nowhere").as_uri())
    with pytest.raises(SystemExit, match="(?s)could not download file://.*train-00000-of-00003.parquet.*CNNDM_URL"):
        cnndm_text.main(["fetch", str(tmp_path / "raw2")])


def test_debian_builder_seed_changes_the_split_and_keeps_siblings_together(tmp_path):
    """lrdrop-build-debian-summaries with seeds 1 and 2: other test descriptions, the same seed the
    same files; a library and its -dev sibling (one first paragraph) always share a split."""
    _index_fixture(tmp_path / "Translation-en", n=60)
    with open(tmp_path / "Translation-en", "a", encoding="utf-8") as f:
        for name, synopsis in (("libsib1", "sibling library"), ("libsib-dev", "sibling library - development")):
            f.write(f"Package: {name}\nDescription-md5: {name}\nDescription-en: {synopsis}\n"
                    " Sib frobs widgets of every kind, quickly and safely, for the other tools here.\n .\n"
                    f" This package is {name}.\n\n")  # fmt: skip
    tests = {}
    for seed in (1, 2, 1):
        out = tmp_path / f"out{seed}"
        deb.build(str(out), str(tmp_path / "Translation-en"), n_valid=5, n_test=5, seed=seed, min_words=10)
        parts = {s: (out / f"{s}.target").read_text().splitlines() for s in ("train", "valid", "test")}
        where = {line: s for s, lines in parts.items() for line in lines}
        assert where["sibling library"] == where["sibling library - development"]
        assert sum(map(len, parts.values())) == 62 and len(set(where)) == len(where)
        tests.setdefault(seed, []).append(parts["test"])
    assert tests[1][0] == tests[1][1] and set(tests[1][0]) != set(tests[2][0])
