"""Corpus builder, BLEU scorer and curve plotter on small hand-made inputs."""

import argparse
import json
import os
import signal
import subprocess
import time

import pytest
import sacrebleu
import torch
from conftest import ROOT, curve_panels, run, tool

from lrdrop_cli.corpora import ding
from lrdrop_cli.corpora.common import shuffled_split
from lrdrop_cli.curves import present_panels, read_log
from lrdrop_cli.metrics import bleu

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


def test_bleu_known_values():
    refs = ["the cat sat on the mat", "a dog barks"]
    assert bleu(refs, refs)[0].score == pytest.approx(100.0)
    assert bleu(["xyz qqq", "uuu"], refs)[0].score == pytest.approx(0.0)
    # one 4-word hypothesis against a 6-word reference: precisions 4/4, 3/3, 2/2, 1/1,
    # brevity penalty exp(1 - 6/4)
    score, sig = bleu(["the cat sat on"], ["the cat sat on the mat"])
    assert score.score == pytest.approx(100 * 2.718281828 ** (1 - 6 / 4), rel=1e-4)
    assert "nrefs:1" in sig and "tok:13a" in sig
    with pytest.raises(ValueError, match="line-aligned"):
        bleu(["a"], ["a", "b"])


def test_score_bleu_cli_refuses_mismatched_files(tmp_path):
    (tmp_path / "h").write_text("a b c\n")
    (tmp_path / "r").write_text("a b c\nd e f\n")
    p = run([tool("lrdrop-score-bleu"), str(tmp_path / "h"), str(tmp_path / "r")], check=False)
    assert p.returncode != 0 and "1 hypotheses but 2 references" in p.stdout
    assert "Traceback" not in p.stdout


def test_plot_curves_from_fixture_log(tmp_path):
    log = tmp_path / "train.log"
    rows = []
    for u in (25, 50, 75):
        rows.append(
            "2026-01-01 00:00:00 | INFO | train_inner | "
            + json.dumps(
                {
                    "epoch": 1,
                    "loss": str(10 - u / 25),
                    "kl_loss": "0.1",
                    "hidden_loss": "0.2",
                    "attn_loss": "0.05",
                    "num_updates": str(u),
                }
            )
        )
    rows.append(
        "2026-01-01 00:00:00 | INFO | valid | "
        + json.dumps({"epoch": 1, "valid_loss": "8.5", "valid_num_updates": "75"})
    )
    log.write_text("\n".join(rows) + "\n")
    out = tmp_path / "curves.png"
    run([tool("lrdrop-plot"), f"lrdrop={log}", "--out", str(out)])
    assert curve_panels(out) == 4  # loss, kl_loss, hidden_loss, attn_loss
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    p = run([tool("lrdrop-plot"), str(empty), "--out", str(out)], check=False)
    assert p.returncode != 0 and "no fairseq JSON log lines" in p.stdout

    titles = [t for t, _ in present_panels({"lrdrop": read_log(str(log))})]
    assert titles == ["loss (bits/token)", "kl_loss", "hidden_loss", "attn_loss"]
    with open(log, "a") as f:  # perplexity logged (as fairseq does for label-smoothed criteria): its own panel
        f.write(
            "2026-01-01 00:00:00 | INFO | valid | "
            + json.dumps({"epoch": 2, "valid_loss": "8.4", "valid_nll_loss": "7.9", "valid_num_updates": "100"})
            + "\n"
        )
    titles = [t for t, _ in present_panels({"lrdrop": read_log(str(log))})]
    assert titles[:2] == ["loss (bits/token)", "nll_loss (bits/token)"]


def _lines(fig):
    """{panel title: {line label: (updates, values)}} of a figure."""
    return {
        ax.get_title(): {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}
        for ax in fig.axes
    }


def test_plot_draws_each_runs_values_in_its_panel(tmp_path):
    """Two runs: each record's value at its update, in the panel of its quantity, under its run's
    name; a quantity only one run logs (kl_loss) gets that run's line only."""
    from lrdrop_cli.curves import figure

    def log(name, records):
        path = tmp_path / name
        path.write_text("".join(f"x | INFO | {tag} | {json.dumps(r)}\n" for tag, r in records))
        return read_log(str(path))

    lr = log(
        "lr.log",
        [
            ("train_inner", {"loss": "6", "nll_loss": "5", "kl_loss": "0.3", "num_updates": "10"}),
            ("train_inner", {"loss": "4", "nll_loss": "3", "kl_loss": "0.2", "num_updates": "20"}),
            ("valid", {"valid_loss": "4.5", "valid_nll_loss": "3.5", "valid_num_updates": "20"}),
        ],
    )
    base = log("base.log", [("train_inner", {"loss": "7", "nll_loss": "6.5", "num_updates": "10"}),
                            ("valid", {"valid_loss": "5.5", "valid_nll_loss": "4.25", "valid_num_updates": "10"})])  # fmt: skip
    fig = figure({"lrdrop": lr, "baseline": base})
    assert _lines(fig) == {
        "loss (bits/token)": {
            "lrdrop train": ([10.0, 20.0], [6.0, 4.0]),
            "lrdrop valid": ([20.0], [4.5]),
            "baseline train": ([10.0], [7.0]),
            "baseline valid": ([10.0], [5.5]),
        },
        "nll_loss (bits/token)": {
            "lrdrop train": ([10.0, 20.0], [5.0, 3.0]),
            "lrdrop valid": ([20.0], [3.5]),
            "baseline train": ([10.0], [6.5]),
            "baseline valid": ([10.0], [4.25]),
        },
        "kl_loss": {"lrdrop": ([10.0, 20.0], [0.3, 0.2])},
    }


def _user_corpus_files(tmp_path, n, seed):
    """TMP/src.txt and TMP/tgt.txt: an aligned toy corpus (lrdrop-make-toy-corpus); returns the pairs."""
    import random

    from lrdrop_cli.corpora.toy import make_pair

    rng = random.Random(seed)
    pairs = [make_pair(rng, 20, 3, 8) for _ in range(n)]
    (tmp_path / "src.txt").write_text("".join(p[0] + "\n" for p in pairs))
    (tmp_path / "tgt.txt").write_text("".join(p[1] + "\n" for p in pairs))
    return pairs


def _toy_data(tmp_path):
    """The toy corpus through lrdrop-demo's data steps (--src/--tgt: the old spellings still work)."""
    _user_corpus_files(tmp_path, n=300, seed=5)
    data = tmp_path / "data"
    run([tool("lrdrop-demo"), "--out", str(data), "--src", str(tmp_path / "src.txt"), "--tgt",
         str(tmp_path / "tgt.txt"), "--vocab", "26", "--valid-size", "20", "--test-size", "20", "--data-only"])  # fmt: skip
    return data


def _log_says(log, text):
    """A ready() for :func:`_interrupt_when`: ``text`` has appeared in the log file ``log``."""
    return lambda: log.exists() and text in log.read_text(encoding="utf-8", errors="replace")


def _interrupt_when(cmd, ready, timeout=300):
    """Start ``cmd``, kill it (and its children) as soon as ``ready()`` is true, as a user's Ctrl-C
    or a lost machine would."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    if p.poll() is None:  # else it ended by itself; the caller's checks say so
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def test_shrunken_demo_end_to_end_on_user_corpus(tmp_path):
    """lrdrop-demo with --src/--tgt (the path for users without Debian), tiny model, seconds of training."""
    pairs = _user_corpus_files(tmp_path, n=400, seed=3)
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
    assert curve_panels(out / "curves.png") == 4  # loss, nll_loss, kl_loss, attn_loss (the default mode)
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
    # the built-in corpus is German-English only
    p = run(cmd[:1] + ["--out", str(tmp_path / "bad3"), "--source-lang", "fr"], check=False)
    assert p.returncode != 0 and "give your own aligned files with --source FILE --target FILE" in p.stdout


def test_plot_reads_bare_log_file_records(tmp_path):
    log = tmp_path / "file.log"
    log.write_text(
        '{"epoch": 1, "loss": "9", "num_updates": "25", "train_wall": "3"}\n'
        '{"epoch": 1, "valid_loss": "8", "valid_num_updates": "25"}\n'
        '{"epoch": 1, "train_loss": "9", "train_num_updates": "25"}\n'
        "Start iterating over samples\n"
    )
    rows = read_log(str(log))
    assert [r["loss"] for r in rows["train_inner"]] == ["9"]
    assert [r["valid_loss"] for r in rows["valid"]] == ["8"]


def test_compound_split_as_fairseq_does():
    from lrdrop_cli.metrics import compound_split

    assert (
        compound_split("a well-known state-of-the-art x - y")
        == "a well ##AT##-##AT## known state ##AT##-##AT## of ##AT##-##AT## the ##AT##-##AT## art x - y"
    )


def test_iwslt_recipe_refuses_missing_data_and_bad_mode(tmp_path):
    train = os.path.join(ROOT, "examples", "iwslt", "train.sh")
    p = run(["bash", train, "nonsense"], check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train, "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "prepare-iwslt14.sh" in p.stdout


def test_benchmark_script_runs_every_mode(tmp_path):
    out = tmp_path / "bench.json"
    p = run(
        [
            tool("lrdrop-benchmark"),
            "--arch",
            "transformer_lrdrop_tiny",
            "--vocab",
            "60",
            "--shapes",
            "4x8",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--gen-shape",
            "3x5",
            "--gen-reps",
            "1",
            "--json",
            str(out),
        ]
    )
    res = json.loads(out.read_text())
    assert [r["mode"] for r in res["train"]] == ["baseline", "rdrop", "hidden", "attn", "lrdrop"]
    assert all(r["median_s"] > 0 and r["peak_mb"] > 0 for r in res["train"])
    assert res["generate"]["identical_hypotheses"] is True
    assert "| 4x8 | lrdrop |" in p.stdout


def test_compare_script_runs_configs_seeds_and_sweep(tmp_path):
    """lrdrop-compare on a toy corpus: same updates for every run, table with mean ± sd, resumes."""
    data = _toy_data(tmp_path)
    assert not (data / "checkpoints").exists()
    small = (
        "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
        "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 --log-interval 2"  # train records for the curves
    )
    cmd = [
        tool("lrdrop-compare"),
        "--out",
        str(tmp_path / "cmp"),
        "--data-bin",
        str(data / "data-bin"),
        "--configs",
        "baseline,lrdrop",
        "--seeds",
        "1,2",
        "--max-update",
        "6",
        "--variant",
        "attn2=--attn-weight 2",
        "--warmup",
        "2",
        "--max-tokens",
        "500",
        "--train-args",
        small,
    ]
    p = run(cmd)
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())
    names = sorted(r["name"] for r in res["runs"])
    assert names == [
        "attn2-d0.1-s1",
        "attn2-d0.1-s2",
        "baseline-d0.1-s1",
        "baseline-d0.1-s2",
        "lrdrop-d0.1-s1",
        "lrdrop-d0.1-s2",
    ]
    assert all(r["updates"] == 6 for r in res["runs"])
    by_name = {r["name"]: r for r in res["runs"]}
    # a variant is R-Drop plus its flags, appended last so they win
    assert by_name["attn2-d0.1-s1"]["flags"].endswith("--hidden-weight 0 --attn-weight 0 --attn-weight 2")
    assert "label_smoothed_cross_entropy" in by_name["baseline-d0.1-s1"]["flags"]
    md = (tmp_path / "cmp" / "results.md").read_text()
    assert "| 0.1 | baseline | 2 |" in md and "| 0.1 | lrdrop | 2 |" in md and "| 0.1 | attn2 | 2 |" in md
    assert curve_panels(tmp_path / "cmp" / "curves-d0.1.png") == 5  # loss, nll_loss and lrdrop's three terms
    # --report: the table of what finished, nothing trained
    rep = run(cmd + ["--report"]).stdout
    assert "6 of 6 runs finished" in rep and "| 0.1 | attn2 | 2 |" in rep and "fairseq" not in rep
    # a rerun trains nothing again
    logs = sorted((tmp_path / "cmp").glob("*/train.log"))
    sizes = [f.stat().st_size for f in logs]
    again = run(cmd)
    assert again.stdout.count("BLEU") >= 5 and [f.stat().st_size for f in logs] == sizes
    # each run's scores recomputed with sacreBLEU from its hypotheses and the test references
    refs = (data / "corpus" / "test.en").read_text().splitlines()
    for r in res["runs"]:
        hyps = (tmp_path / "cmp" / r["name"] / "test.hyp.en").read_text().splitlines()
        assert r["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2))
        assert r["chrf"] == pytest.approx(round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2))
        assert r["corpus"] == res["corpus"] == "data"  # the --raw folder's parent
    p = run(cmd[:1] + ["--configs", "nonsense"], check=False)
    assert p.returncode != 0 and "unknown --configs nonsense" in p.stdout
    p = run(cmd + ["--variant", "rdrop=--attn-weight 2"], check=False)  # a variant named like a mode
    assert p.returncode != 0 and "--variant 'rdrop=--attn-weight 2'" in p.stdout


def test_demo_options_device_defaults_and_single_flag_train_args():
    import argparse

    from lrdrop_cli import runs, steps

    ap = argparse.ArgumentParser()
    steps.add_training_args(ap)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--train-args", default="")
    cpu = steps.parse_args(ap, ["--train-args", "--fp16"])
    assert cpu.train_args == "--fp16"  # argparse alone: "expected one argument"
    assert (cpu.lr, cpu.dropout, cpu.warmup, cpu.max_tokens) == (3e-3, 0.1, 150, 1536)
    gpu = steps.parse_args(ap, ["--device", "cuda", "--lr", "5e-4"])
    assert (gpu.lr, gpu.dropout, gpu.max_tokens) == (5e-4, 0.3, 4096)  # the user's value wins

    def command(args):
        schedule = runs.Schedule(lr=args.lr, warmup=args.warmup, max_tokens=args.max_tokens, updates=10)
        train_run = runs.TrainRun("data", "ckpt", ["--criterion", "lr_drop"], schedule, device=args.device,
                                  model=steps.translation_model(args))  # fmt: skip
        return runs.train_command(train_run)

    cmd = command(gpu)
    assert "--fp16" in cmd and "--cpu" not in cmd and cmd[cmd.index("--encoder-embed-dim") + 1] == "256"
    # compare.py's --device cuda --model cpu: the CPU demo's model and defaults, in fp32, on a GPU
    ap.add_argument("--model", choices=("cpu", "cuda"))
    small = steps.parse_args(ap, ["--device", "cuda", "--model", "cpu"])
    cmd = command(small)
    assert small.lr == 3e-3 and "--fp16" not in cmd and "--cpu" not in cmd
    assert cmd[cmd.index("--encoder-embed-dim") + 1] == "128"


def test_train_command_from_a_typed_run():
    """Every flag of a run to convergence and of a fixed budget, in order, the user's last."""
    from lrdrop_cli import runs
    from lrdrop_cli.fairseq_io import USER_DIR

    schedule = runs.Schedule(lr=0.003, warmup=150, max_tokens=1536, updates=15000, patience=5, keep_checkpoints=2)
    train_run = runs.TrainRun("bin", "ckpt", ["--criterion", "lr_drop", "--kl-weight", "1"], schedule, seed=3,
                              dropout=0.3, model=["--encoder-layers", "2"], task=["--truncate-source"],
                              train_args="--max-epoch 7")  # fmt: skip
    cmd = runs.train_command(train_run)
    assert cmd[cmd.index("bin") :] == [
        "bin", "--user-dir", USER_DIR, "--arch", "transformer_lrdrop", "--encoder-layers", "2", "--truncate-source",
        "--share-all-embeddings", "--criterion", "lr_drop", "--kl-weight", "1", "--dropout", "0.3",
        "--attention-dropout", "0.1", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", "0.003",
        "--weight-decay", "0.0001", "--max-tokens", "1536", "--max-epoch", "1000", "--save-dir", "ckpt",
        "--best-checkpoint-metric", "nll_loss", "--seed", "3", "--num-workers", "0", "--log-format", "json",
        "--log-interval", "25", "--lr-scheduler", "reduce_lr_on_plateau", "--lr-shrink", "0.5", "--lr-patience", "1",
        "--lr-threshold", "0.001", "--warmup-updates", "150", "--warmup-init-lr", "0.00030000000000000003",
        "--stop-min-lr", "0.0002", "--max-update", "15000", "--patience", "5", "--keep-last-epochs", "2",
        "--cpu", "--max-epoch", "7",
    ]  # fmt: skip
    fixed = runs.Schedule(lr=0.001, warmup=10, max_tokens=500, updates=100, save_every=20, minutes=6)
    cmd = runs.train_command(runs.TrainRun("bin", "ckpt", [], fixed, device="cuda"))
    assert cmd[cmd.index("--lr-scheduler") :] == [
        "--lr-scheduler", "polynomial_decay", "--warmup-updates", "10", "--total-num-update", "100",
        "--max-update", "100", "--end-learning-rate", "0", "--no-epoch-checkpoints", "--save-interval-updates", "20",
        "--keep-interval-updates", "1", "--stop-time-hours", "0.1000",
    ]  # fmt: skip
    generate = runs.generate_command("bin", "best.pt", "cpu", ["--beam", "4"], ["--truncate-source"], max_tokens=80)
    assert generate[generate.index("bin") :] == [
        "bin", "--user-dir", USER_DIR, "--path", "best.pt", "--gen-subset", "test", "--truncate-source", "--beam", "4",
        "--max-tokens", "80", "--remove-bpe", "sentencepiece", "--cpu",
    ]  # fmt: skip


def test_compare_until_convergence_resumes_after_interruption(tmp_path):
    """compare.py --patience: stops on validation perplexity; killed mid-run, the same command
    goes on from the run's last checkpoint instead of update 0."""
    data = _toy_data(tmp_path)
    small = (
        "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 16 --decoder-embed-dim 16 "
        "--encoder-ffn-embed-dim 32 --decoder-ffn-embed-dim 32"
    )
    out = tmp_path / "cmp"
    cmd = [
        tool("lrdrop-compare"),
        "--out",
        str(out),
        "--data-bin",
        str(data / "data-bin"),
        "--configs",
        "rdrop",
        "--seeds",
        "1",
        "--dropouts",
        "0.3",
        "--patience",
        "2",
        "--max-update",
        "600",
        "--warmup",
        "2",
        "--max-tokens",
        "300",
        "--lr",
        "0.05",
        "--train-args",
        small,
    ]
    run_dir = out / "rdrop-d0.3-s1"
    # fairseq logs "Saved checkpoint" after writing every copy (checkpoint_last.pt is a copy)
    _interrupt_when(cmd, _log_says(run_dir / "train.log", "Saved checkpoint"))
    assert not (run_dir / "result.json").exists(), "the run finished before it could be interrupted"
    run(cmd)
    log = (run_dir / "train.log").read_text()
    assert "Loaded checkpoint" in log and "@ 0 updates" not in log.split("Loaded checkpoint")[-1].splitlines()[0]
    res = json.loads((out / "results.json").read_text())["runs"][0]
    # stopped (patience or the 4th lr halving) before the cap, at least 2 validations (epochs) after its best
    # (fairseq's patience counter starts again on resume)
    records = read_log(run_dir / "train.log")["valid"]
    stopped = "early stop" in log or "stopping training because current learning rate" in log
    assert stopped and res["updates"] < 600
    assert len({int(r["valid_num_updates"]) for r in records if int(r["valid_num_updates"]) > res["best_update"]}) >= 2
    assert res["best_valid_nll"] == min(float(r["valid_nll_loss"]) for r in records)
    assert "reduce_lr_on_plateau" in log
    md = (out / "results.md").read_text()
    assert "| 0.3 | rdrop | 1 |" in md
    # diagnose.py reads the same checkpoints
    rows = tmp_path / "diag.json"
    run(
        [
            tool("lrdrop-diagnose"),
            str(run_dir / "checkpoints" / "checkpoint_best.pt"),
            "--data-bin",
            str(data / "data-bin"),
            "--batches",
            "2",
            "--max-tokens",
            "300",
            "--json",
            str(rows),
        ]
    )
    row = json.loads(rows.read_text())[0]
    assert row["update"] == res["best_update"]
    # the command's row is what the library computes on that checkpoint and those batches
    from lrdrop_cli.measure import diagnose

    model, _, task, _ = diagnose.load(str(run_dir / "checkpoints" / "checkpoint_best.pt"), str(data / "data-bin"))
    expected = diagnose.diagnose(model, task, diagnose.batches(task, 2, 300))
    assert {k: row[k] for k in expected} == pytest.approx(expected, rel=1e-4)


def test_interrupted_demo_resumes_from_its_last_checkpoint(tmp_path):
    """Killed mid-epoch, the same lrdrop-demo command goes on from the --save-every checkpoint."""
    _user_corpus_files(tmp_path, n=400, seed=4)
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
    _interrupt_when(cmd, _log_says(out / "train.log", "Saved checkpoint"))
    log = (out / "train.log").read_text()
    assert "done training" not in log, "the run ended before it could be interrupted"
    p = run(cmd + ["--updates", "12"])  # the same run, shortened so the test ends soon
    resumed = (out / "train.log").read_text()[len(log) :]
    loaded = [line for line in resumed.splitlines() if "Loaded checkpoint" in line]
    assert loaded and "@ 0 updates" not in loaded[0], loaded
    assert "sacreBLEU on test" in p.stdout


def test_dictionary_phrases_never_bring_a_held_out_sentence_into_train(tmp_path):
    """--phrases adds word/phrase entries to train only: none of them is a valid or test sentence,
    and valid/test are the same with and without them."""
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


def score_bleu_cli(tmp_path, capsys, hyps, refs, *flags):
    """lrdrop-score-bleu in-process on two written files: (BLEU, signature) as it prints them."""
    from lrdrop_cli.bin import score_bleu

    (tmp_path / "hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref").write_text("\n".join(refs) + "\n", encoding="utf-8")
    score_bleu.main([str(tmp_path / "hyp"), str(tmp_path / "ref"), *flags])
    out = capsys.readouterr().out.splitlines()
    return float(out[0].split()[2]), out[1].removeprefix("signature: ")


def test_score_bleu_compound_split(tmp_path, capsys):
    """Both sides split at hyphens, no further tokenisation: 'the well ##AT##-##AT## known man'
    against '... woman' matches 4/5, 3/4, 2/3, 1/2 n-grams, equal lengths, BLEU 100 x 0.2^(1/4).
    Unsplit, 13a keeps 'well-known' one token and the score is 0."""
    args = (["the well-known man"], ["the well-known woman"])
    score, sig = score_bleu_cli(tmp_path, capsys, *args, "--compound-split")
    assert score == pytest.approx(100 * 0.2**0.25, abs=0.01) and "tok:none" in sig
    assert score_bleu_cli(tmp_path, capsys, *args)[0] == 0.0


def test_score_bleu_detokenises_moses_hypotheses(tmp_path, capsys):
    """Moses-tokenised, escaped output ('don &apos;t') becomes the reference's 'don't': 100.
    Scored as it is, 13a splits the escape and the score drops."""
    args = (["I don &apos;t know ."], ["I don't know."])
    assert score_bleu_cli(tmp_path, capsys, *args, "--detok-hyps", "en")[0] == 100.0
    assert score_bleu_cli(tmp_path, capsys, *args)[0] < 20


def test_score_bleu_tokenize_reaches_sacrebleu(tmp_path, capsys):
    """'a b c d e.' against 'a b c d e .': 13a splits the period (100); with --tokenize none the
    hypothesis has 5 tokens, 4/5, 3/4, 2/3, 1/2 matches and brevity penalty exp(1 - 6/5)."""
    args = (["a b c d e."], ["a b c d e ."])
    score, sig = score_bleu_cli(tmp_path, capsys, *args, "--tokenize", "none")
    assert score == pytest.approx(100 * 0.2**0.25 * 2.718281828 ** (1 - 6 / 5), abs=0.01) and "tok:none" in sig
    score, sig = score_bleu_cli(tmp_path, capsys, *args)
    assert score == 100.0 and "tok:13a" in sig


def test_compare_over_two_dropouts_plans_pairs_and_reports_each(tmp_path):
    """--dropouts 0.1,0.3: dropout by dropout, seed by seed, baseline last in a seed; --report's
    table has one block per dropout, and the difference from R-Drop pairs runs of the same
    seed and the same dropout (hand-made results, nothing trained)."""
    from lrdrop_cli.pipelines import comparison as compare

    a = argparse.Namespace(seeds="1,2", dropouts="0.1,0.3", configs="baseline,rdrop", variants={},
                           kl_weight=1.0, hidden_weight=None, attn_weight=None)  # fmt: skip
    assert [r[0] for r in compare.plan(a)] == [
        "rdrop-d0.1-s1", "baseline-d0.1-s1", "rdrop-d0.1-s2", "baseline-d0.1-s2",
        "rdrop-d0.3-s1", "baseline-d0.3-s1", "rdrop-d0.3-s2", "baseline-d0.3-s2",
    ]  # fmt: skip
    out, raw = tmp_path / "cmp", tmp_path / "corpus"
    raw.mkdir()
    (raw / "test.en").write_text("a\n")
    bleu = {("rdrop", 0.1): (10, 12), ("baseline", 0.1): (9, 10), ("rdrop", 0.3): (20, 21), ("baseline", 0.3): (18, 21)}
    nll = {("rdrop", 0.1): (4.0, 4.2), ("baseline", 0.1): (4.5, 4.4), ("rdrop", 0.3): (3.0, 3.1), ("baseline", 0.3): (3.2, 3.7)}  # fmt: skip
    for (cfg, dropout), scores in bleu.items():
        for seed, score in zip((1, 2), scores):
            d = out / f"{cfg}-d{dropout:g}-s{seed}"
            d.mkdir(parents=True)
            result = {"name": d.name, "seed": seed, "dropout": dropout, "bleu": score, "chrf": 2.0 * score,
                      "best_valid_nll": nll[cfg, dropout][seed - 1], "best_update": 100 * seed, "train_minutes": 1.0}  # fmt: skip
            (d / "result.json").write_text(json.dumps(result))
            (d / "train.log").write_text(
                "x | INFO | valid | " + json.dumps({"valid_loss": "5", "valid_nll_loss": "4", "valid_num_updates": "100"}) + "\n"
            )  # fmt: skip
    p = run([tool("lrdrop-compare"), "--out", str(out), "--data-bin", str(tmp_path), "--raw", str(raw), "--report",
             "--configs", "baseline,rdrop", "--seeds", "1,2", "--dropouts", "0.1,0.3"])  # fmt: skip
    assert "8 of 8 runs finished" in p.stdout
    rows = [
        [c.strip() for c in line.strip("|").split("|")] for line in (out / "results.md").read_text().splitlines()[2:]
    ]
    cells = {(r[0], r[1]): r for r in rows}
    assert list(cells) == [("0.1", "baseline"), ("0.1", "rdrop"), ("0.3", "baseline"), ("0.3", "rdrop")]
    # columns: nll mean ± sd, nll vs R-Drop, BLEU mean ± sd, per seed, BLEU vs R-Drop, chrF
    assert cells["0.1", "baseline"][3:9] == ["4.450 ± 0.071", "0.350 ± 0.212", "9.50 ± 0.71", "9.00, 10.00",
                                             "-1.50 ± 0.71", "19.00 ± 1.41"]  # fmt: skip
    assert cells["0.3", "baseline"][3:9] == ["3.450 ± 0.354", "0.400 ± 0.283", "19.50 ± 2.12", "18.00, 21.00",
                                             "-1.00 ± 1.41", "39.00 ± 4.24"]  # fmt: skip
    assert cells["0.3", "rdrop"][4] == cells["0.3", "rdrop"][7] == ""  # no difference of R-Drop from itself
    assert curve_panels(out / "curves-d0.1.png") == curve_panels(out / "curves-d0.3.png") == 2
