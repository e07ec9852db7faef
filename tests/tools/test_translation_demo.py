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
        "--train-args",
        small,
    ]
    p = run(cmd)
    assert "sacreBLEU on test (30 sentences)" in p.stdout and "nrefs:1|" in p.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["test_sentences"] == 30
    # the BLEU recomputed with sacreBLEU from the files the demo wrote: its hypotheses against the
    # test references, in the same order (not the references against themselves)
    hyps = (out / "test.hyp.xx").read_text().splitlines()
    refs = (out / "corpus" / "test.xx").read_text().splitlines()
    assert len(hyps) == len(refs) == 30 and hyps != refs
    assert result["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2))
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
