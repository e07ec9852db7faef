"""The GLUE recipe end to end: its columns as fairseq's preprocessing, and a shrunken train and evaluate."""

import os
import sys

import pytest
from conftest import ROOT, run
from helpers import random_official_roberta


def _tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")


def test_glue_columns_follow_fairseqs_preprocessing(tmp_path):
    from lrdrop_cli import glue_text

    glue = tmp_path / "glue_data"
    rte = [["index", "sentence1", "sentence2", "label"], ["0", "A cat sat.", "A cat is sitting.", "entailment"]]
    _tsv(glue / "RTE" / "train.tsv", rte)
    _tsv(glue / "RTE" / "dev.tsv", rte)
    assert glue_text.columns(str(glue), "RTE", str(tmp_path / "rte")) == {"train": 1, "valid": 1}
    assert (tmp_path / "rte" / "valid.raw.input1").read_text() == "A cat is sitting.\n"
    assert (tmp_path / "rte" / "train.label").read_text() == "entailment\n"
    # CoLA has no header; STS-B's 0..5 scores become 0..1; QQP's malformed rows are skipped
    _tsv(glue / "CoLA" / "train.tsv", [["src", "1", "", "Dogs bark."]])
    _tsv(glue / "CoLA" / "dev.tsv", [["src", "0", "*", "Bark dogs the."]])
    glue_text.columns(str(glue), "CoLA", str(tmp_path / "cola"))
    assert (tmp_path / "cola" / "valid.raw.input0").read_text() == "Bark dogs the.\n"
    assert (tmp_path / "cola" / "valid.label").read_text() == "0\n"
    sts = [["i"] * 10, ["0", "g", "f", "y", "s", "l", "l", "A man.", "A person.", "4.5"]]
    _tsv(glue / "STS-B" / "train.tsv", sts)
    _tsv(glue / "STS-B" / "dev.tsv", sts)
    glue_text.columns(str(glue), "STS-B", str(tmp_path / "sts"))
    assert (tmp_path / "sts" / "train.label").read_text() == "0.9\n"
    qqp = [["id", "q1", "q2", "question1", "question2", "is_duplicate"], ["1", "2", "3", "Why?", "How?", "0"]]
    _tsv(glue / "QQP" / "train.tsv", qqp + [["bad", "row"]])
    _tsv(glue / "QQP" / "dev.tsv", qqp)
    assert glue_text.columns(str(glue), "QQP", str(tmp_path / "qqp"))["train"] == 1
    # MNLI: train's gold label is column 12 of 12, dev's column 16 of 16 (after five annotators'
    # labels); valid is dev_matched, test dev_mismatched
    head = ["index", "promptID", "pairID", "genre", "b1", "b2", "p1", "p2", "sentence1", "sentence2"]
    _tsv(glue / "MNLI" / "train.tsv", [head + ["label1", "gold_label"], ["0"] * 8 + ["P.", "H.", "neutral", "neutral"]])
    for stem, gold in (("dev_matched", "entailment"), ("dev_mismatched", "contradiction")):
        dev = ["0"] * 8 + [f"{stem} p.", "h.", "neutral", "neutral", "neutral", "x", "x", gold]
        _tsv(glue / "MNLI" / f"{stem}.tsv", [head + ["label1"] + ["label"] * 4 + ["gold_label"], dev])
    assert glue_text.columns(str(glue), "MNLI", str(tmp_path / "mnli")) == {"train": 1, "valid": 1, "test": 1}
    labels = [(tmp_path / "mnli" / f"{split}.label").read_text() for split in ("train", "valid", "test")]
    assert labels == ["neutral\n", "entailment\n", "contradiction\n"]
    assert (tmp_path / "mnli" / "test.raw.input0").read_text() == "dev_mismatched p.\n"
    with pytest.raises(FileNotFoundError, match="prepare.sh"):
        glue_text.columns(str(glue), "MRPC", str(tmp_path / "mrpc"))
    assert "NUM_CLASSES=1" in glue_text.hparams("STS-B") and "--report-mcc" in glue_text.hparams("CoLA")
    # the command, as prepare.sh runs it: a line of counts, or one line saying what is missing
    command = [sys.executable, "-m", "lrdrop_cli.glue_text", "columns", str(glue)]
    assert run(command + ["RTE", str(tmp_path / "cli")], cwd=ROOT).stdout == "[glue] RTE: train 1, valid 1\n"
    assert (tmp_path / "cli" / "train.raw.input0").read_text() == "A cat sat.\n"
    p = run(command + ["MRPC", str(tmp_path / "cli")], cwd=ROOT, check=False)
    assert p.returncode == 1 and p.stdout.startswith("glue_text: ") and "not found: download GLUE first" in p.stdout
    assert "Traceback" not in p.stdout


def test_glue_recipe_trains_and_evaluates(toy_sentences, tmp_path):
    """examples/glue/train.sh and evaluate.sh as written, on the toy corpus with a tiny random
    checkpoint in the official layout (the shapes come in as extra arguments)."""
    train_sh = os.path.join(ROOT, "examples", "glue", "train.sh")
    p = run(["bash", train_sh, "NOPE", "lrdrop"], check=False)
    assert p.returncode == 2 and "unknown GLUE task 'NOPE'" in p.stdout
    p = run(["bash", train_sh, "RTE", "nonsense"], env={"DATA": toy_sentences["classification"]}, check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train_sh, "RTE", "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "examples/glue/prepare.sh RTE" in p.stdout
    env = {"DATA": toy_sentences["classification"], "ROBERTA": str(tmp_path / "none.pt")}
    p = run(["bash", train_sh, "RTE", "lrdrop"], env=env, check=False)
    assert p.returncode == 1 and "roberta.large.tar.gz" in p.stdout

    random_official_roberta(toy_sentences["classification"], tmp_path / "model.pt")
    save = tmp_path / "save"
    env = {**env, "ROBERTA": str(tmp_path / "model.pt"), "SAVE": str(save), "FP16": "0"}
    tiny = ["--cpu", "--max-positions", "64", "--max-update", "3", "--batch-size", "8", "--num-workers", "0"]
    tiny += ["--encoder-layers", "2", "--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32"]
    out = run(["bash", train_sh, "RTE", "lrdrop", *tiny, "--encoder-attention-heads", "2"], env=env).stdout
    assert "--arch', 'roberta_lrdrop_large'" in out or "roberta_lrdrop_large" in out
    assert "Loaded checkpoint" in out and "done training" in out, out[-3000:]
    evaluate = os.path.join(ROOT, "examples", "glue", "evaluate.sh")
    out = run(["bash", evaluate, "RTE", str(save / "checkpoint_best.pt")], env={"DATA": env["DATA"]}).stdout
    assert "| valid |" in out and "| test |" in out and "accuracy" in out, out
