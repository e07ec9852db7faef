"""lrdrop-demo end to end on a user corpus, and its resume after an interruption."""

import json
import os
import subprocess

import pytest
import sacrebleu
import torch
from conftest import curve_panels, run, tool
from toy_pipelines import interrupt_when, log_says, user_corpus_files

from lrdrop_cli.curves import read_log


def test_shrunken_demo_end_to_end_on_user_corpus(tmp_path):
    """lrdrop-demo with --src/--tgt (the path for users without Debian), tiny model, seconds of training."""
    pairs = user_corpus_files(tmp_path, n=400, seed=3)
    out = tmp_path / "demo"
    small = (
        "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
        "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64"
    )
    cmd = [
        tool("lrdrop-demo"),
        "--out",
        str(out),
        "--source",
        str(tmp_path / "src.txt"),
        "--target",
        str(tmp_path / "tgt.txt"),
        "--vocab",
        "26",
        "--source-lang",
        "fr",
        "--target-lang",
        "xx",
        "--valid-size",
        "20",
        "--test-size",
        "30",
        "--updates",
        "30",
        "--warmup",
        "10",
        "--max-tokens",
        "1000",
        "--lenpen",
        "1.7",
        "--train-args",
        small,
    ]
    p = run(cmd)
    assert "sacreBLEU on test (30 sentences)" in p.stdout and "nrefs:1|" in p.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["test_sentences"] == 30 and result["lenpen"] == 1.7
    assert result["updates"] == result["updates_trained"] == 30 and 0 < result["training_minutes"] < 10
    assert "'lenpen': 1.7," in (out / "generate.log").read_text()  # fairseq-generate's own config
    # the BLEU recomputed with sacreBLEU from the files the demo wrote: its hypotheses against the
    # test references, in the same order (not the references against themselves)
    hyps = (out / "test.hyp.xx").read_text().splitlines()
    refs = (out / "corpus" / "test.xx").read_text().splitlines()
    assert len(hyps) == len(refs) == 30 and hyps != refs
    assert result["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2))
    assert result["chrf"] == pytest.approx(round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2))
    assert "chrF on test: " in p.stdout and "|nc:6|" in result["chrf_signature"]
    assert "translation memory" not in p.stdout and "translation_memory" not in result  # a user corpus has none
    assert curve_panels(out / "curves.png") == 5  # loss, nll_loss, kl_loss, hidden_loss, attn_loss (lrdrop)
    assert (out / "data-bin" / "test.fr-xx.xx.bin").is_file()
    # checkpoint_best is the epoch of lowest validation perplexity (nll), not of label-smoothed loss
    valid = read_log(str(out / "train.log"))["valid"]
    assert len(valid) >= 2
    best = torch.load(out / "checkpoints" / "checkpoint_best.pt", map_location="cpu", weights_only=False)
    assert best["extra_state"]["val_loss"] == pytest.approx(min(float(v["valid_nll_loss"]) for v in valid), abs=1e-3)
    tr = run([tool("lrdrop-translate"), "--run", str(out), pairs[0][0]])
    assert len(tr.stdout.strip().splitlines()) == 1 and tr.stdout.strip().startswith("t")
    # sentences on stdin translate as they do as arguments, one line each, in order
    two = [pairs[1][0], pairs[0][0]]
    by_args = run([tool("lrdrop-translate"), "--run", str(out), *two]).stdout.splitlines()
    piped = subprocess.run([tool("lrdrop-translate"), "--run", str(out)], input="\n".join(two) + "\n\n",
                           capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert piped.returncode == 0 and piped.stdout.splitlines() == by_args and len(by_args) == 2
    assert by_args[1] == tr.stdout.strip()
    # a missing file is named with its flag, without a traceback
    p = run([tool("lrdrop-translate"), "--run", str(out), "--spm", str(tmp_path / "none.model"), "x"], check=False)
    assert p.returncode != 0 and f"--spm: {tmp_path / 'none.model'} does not exist" in p.stdout
    assert "Traceback" not in p.stdout
    # a second run skips the finished steps
    again = run(cmd).stdout
    assert again.count("(done already") == 4

    p = run(cmd[:1] + ["--out", str(tmp_path / "bad"), "--source", str(tmp_path / "src.txt")], check=False)
    assert p.returncode != 0 and "give both --source and --target" in p.stdout
    # a corpus that is not UTF-8: one line naming the file and the line, no traceback
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(
        "eins\nzwei\nGr\xfc\xdfe\n".encode("utf-8").replace(
            "Gr\xfc\xdfe".encode("utf-8"), "Gr\xfc\xdfe".encode("latin-1")
        )
    )
    p = run(cmd[:1] + ["--out", str(tmp_path / "bad2"), "--source", str(latin1), "--target", str(latin1)], check=False)
    assert p.returncode != 0 and f"--source {latin1}: line 3 is not valid UTF-8" in p.stdout
    assert "Traceback" not in p.stdout
    # misaligned files: both line counts, nothing split (zip would silently drop the extra line)
    (tmp_path / "short.txt").write_text("".join(f"w{i} x y\n" for i in range(9)))
    p = run(cmd[:1] + ["--out", str(tmp_path / "bad4"), "--source", str(tmp_path / "src.txt"),
                       "--target", str(tmp_path / "short.txt")], check=False)  # fmt: skip
    n_src = len((tmp_path / "src.txt").read_text().splitlines())
    assert p.returncode != 0 and f"--source has {n_src} lines but --target has 9" in p.stdout
    assert not (tmp_path / "bad4" / "corpus" / "train.de").exists()
    # the built-in corpus is German-English only
    p = run(cmd[:1] + ["--out", str(tmp_path / "bad3"), "--source-lang", "fr"], check=False)
    assert p.returncode != 0 and "give your own aligned files with --source FILE --target FILE" in p.stdout


def test_interrupted_demo_resumes_from_its_last_checkpoint(tmp_path):
    """Killed mid-epoch, the same lrdrop-demo command goes on from the --save-every checkpoint."""
    user_corpus_files(tmp_path, n=400, seed=4)
    out = tmp_path / "demo"
    small = (
        "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 16 --decoder-embed-dim 16 "
        "--encoder-ffn-embed-dim 32 --decoder-ffn-embed-dim 32"
    )
    cmd = [
        tool("lrdrop-demo"),
        "--out",
        str(out),
        "--source",
        str(tmp_path / "src.txt"),
        "--target",
        str(tmp_path / "tgt.txt"),
        "--vocab",
        "26",
        "--valid-size",
        "20",
        "--test-size",
        "20",
        "--updates",
        "400",
        "--warmup",
        "5",
        "--max-tokens",
        "100",
        "--save-every",
        "4",
        "--train-args",
        small,
    ]
    # any mid-epoch checkpoint, once fairseq has written all its copies and said so
    interrupt_when(cmd, log_says(out / "train.log", "Saved checkpoint"))
    log = (out / "train.log").read_text()
    assert "done training" not in log, "the run ended before it could be interrupted"
    p = run(cmd + ["--updates", "12"])  # the same run, shortened so the test ends soon
    resumed = (out / "train.log").read_text()[len(log) :]
    loaded = [line for line in resumed.splitlines() if "Loaded checkpoint" in line]
    assert loaded and "@ 0 updates" not in loaded[0], loaded
    assert "sacreBLEU on test" in p.stdout


def test_the_demo_shows_short_and_long_lines_and_the_translation_memory(tmp_path):
    """Three interface strings (at most 4 words) and three help sentences (10 words or more), spread
    over the test set; the translation memory's figures from the LibreOffice builder's report."""
    from lrdrop_cli.pipelines.translation import example_lines, translation_memory

    sources = [("Speichern" if i % 3 else "Das ist ein ziemlich langer Satz aus der Hilfe mit elf Wörtern darin.")
               for i in range(30)]  # fmt: skip
    picked = example_lines(sources)
    assert len(picked) == 6 == len(set(picked)) and picked == sorted(picked)
    assert sum(len(sources[i].split()) <= 4 for i in picked) == 3
    assert sum(len(sources[i].split()) >= 10 for i in picked) == 3
    assert len(example_lines(["ein zwei drei vier fünf"] * 10)) == 6  # neither kind: any six lines
    assert translation_memory(str(tmp_path)) is None
    report = {"leakage": {"tm_bleu": 22.53, "tm_chrf": 38.86, "tm_bleu_signature": "nrefs:1|case:mixed"}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert translation_memory(str(tmp_path))["tm_bleu"] == 22.53


def test_the_demo_defaults_to_libreoffice_with_its_measured_budget_and_the_studys_splits():
    from lrdrop_cli.bin.demo import parse_args

    a = parse_args([])
    assert (a.corpus, a.updates, a.valid_size, a.test_size, a.lenpen) == ("libreoffice", 2300, 1000, 1500, 1.5)
    a = parse_args(["--corpus", "ding"])
    assert (a.updates, a.valid_size, a.test_size, a.lenpen) == (2800, 500, 1000, 1.0)
    a = parse_args(["--source", "s.txt", "--target", "t.txt", "--updates", "30", "--test-size", "7", "--lenpen", "2"])
    assert (a.updates, a.valid_size, a.test_size, a.lenpen) == (30, 500, 7, 2.0)
