"""lr_drop_sentence_prediction through real fairseq-train and fairseq-validate runs."""

import json
import os

from conftest import ROOT, run, tool
from helpers import (
    REGRESSION,
    fairseq_validate,
    json_tail,
    random_official_roberta,
    sentence_args,
)


def _train(data, save_dir, extra, max_update=6):
    return run(
        [
            tool("fairseq-train"),
            *sentence_args(data, extra=extra),
            "--user-dir",
            os.path.join(ROOT, "lrdrop_fairseq"),
            "--save-dir",
            save_dir,
            "--max-update",
            str(max_update),
            "--optimizer",
            "adam",
            "--lr",
            "1e-3",
            "--log-format",
            "json",
            "--log-interval",
            "2",
            "--num-workers",
            "0",
            "--no-epoch-checkpoints",
        ]
    ).stdout


def _json_lines(out, tag):
    return [json.loads(line.split(f"| {tag} | ", 1)[1]) for line in out.splitlines() if f"| {tag} | " in line]


def test_fairseq_train_restore_andfairseq_validate(toy_sentences, tmp_path):
    data = toy_sentences["classification"]
    random_official_roberta(data, tmp_path / "model.pt")
    save = str(tmp_path / "ckpt")
    out = _train(
        data,
        save,
        ["--restore-file", str(tmp_path / "model.pt"), "--reset-optimizer", "--reset-dataloader", "--reset-meters"]
        + [
            "--hidden-weight",
            "1",
            "--report-mcc",
            "--best-checkpoint-metric",
            "accuracy",
            "--maximize-best-checkpoint-metric",
        ],
    )
    assert "Loaded checkpoint" in out and "model.pt" in out, out[-3000:]
    inner = _json_lines(out, "train_inner")
    for term in ("kl_loss", "hidden_loss", "attn_loss", "accuracy", "objective"):
        assert term in inner[-1], (term, inner[-1])
    valid = _json_lines(out, "valid")
    assert "valid_accuracy" in valid[-1] and "valid_mcc" in valid[-1] and "valid_kl_loss" not in valid[-1]

    best = os.path.join(save, "checkpoint_best.pt")
    with_plugin = fairseq_validate(
        data, best, ["--user-dir", os.path.join(ROOT, "lrdrop_fairseq")], "lr_drop_sentence_prediction"
    )
    assert "| test |" in with_plugin and "mcc" in with_plugin, with_plugin[-2000:]
    # exported, plain fairseq (no plugin) loads it and scores the same
    plain = str(tmp_path / "plain.pt")
    assert "roberta" in run([tool("lrdrop-export"), best, plain]).stdout
    without = fairseq_validate(data, plain, [], "sentence_prediction")
    assert json_tail(without, "test")["test_accuracy"] == json_tail(with_plugin, "test")["test_accuracy"]


def test_fairseq_train_regression(toy_sentences, tmp_path):
    out = _train(
        toy_sentences["regression"],
        str(tmp_path / "reg"),
        [*REGRESSION, "--report-pearson-and-spearman", "--hidden-weight", "1"],
        max_update=4,
    )
    inner = _json_lines(out, "train_inner")
    assert "prediction_mse_loss" in inner[-1] and "kl_loss" not in inner[-1] and "hidden_loss" in inner[-1]
    assert "valid_pearson" in _json_lines(out, "valid")[-1]
