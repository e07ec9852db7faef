"""Reading what fairseq writes: progress lines for people, hypotheses in corpus order."""

import json

import pytest

from lrdrop_cli.fairseq_io import TrainingProgress, read_hypotheses, read_log


def inner(update, ppl):
    return "2026-01-01 00:00:00 | INFO | train_inner | " + json.dumps(
        {"num_updates": str(update), "loss": "5", "ppl": str(ppl)}
    )


def valid(update, ppl):
    rec = {"valid_loss": "4", "valid_ppl": str(ppl), "valid_num_updates": str(update)}
    return "2026-01-01 00:00:00 | INFO | valid | " + json.dumps(rec)


def test_progress_line_counts_time_left_from_this_runs_own_pace():
    now = [100.0]
    progress = TrainingProgress(1000, clock=lambda: now[0])
    now[0] = 160.0  # a resumed run: its first record is update 400, one minute in
    assert progress(inner(400, 90.04)) == "[train] update 400/1000 (40%) | 1.0 min | train ppl 90.0"
    now[0] = 220.0  # 100 more updates in one more minute: 500 left at 100 a minute
    assert progress(inner(500, 80)) == "[train] update 500/1000 (50%) | 2.0 min, ~5.0 min left | train ppl 80.0"
    assert progress(valid(500, 70.26)) == "[train] validation: valid ppl 70.3 at 500"
    now[0] = 280.0
    assert progress(inner(600, 75)).endswith("| train ppl 75.0 | valid ppl 70.3 at 500")
    assert "~4.0 min left" in progress(inner(600, 75))
    # an epoch summary and other lines say nothing; the end is announced
    assert progress('x | INFO | train | {"epoch": 1, "train_loss": "5"}') is None
    assert progress("| INFO | fairseq.trainer | begin training epoch 2") is None
    assert progress("2026 | INFO | fairseq_cli.train | done training in 10.0 seconds") == "[train] done"


def test_hypotheses_come_back_in_corpus_order(tmp_path):
    """fairseq-generate writes batches sorted by length: sentence ids out of order."""
    log = tmp_path / "generate.log"
    lines = []
    for i in (2, 0, 3, 1):
        lines += [f"S-{i}\tsource {i}", f"H-{i}\t-0.5\ttok{i} ▁x", f"D-{i}\t-0.5\tdetok {i}", f"P-{i}\t-0.1 -0.2"]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_hypotheses(str(log)) == ["detok 0", "detok 1", "detok 2", "detok 3"]
    assert read_hypotheses(str(log), expected=4)[2] == "detok 2"
    with pytest.raises(ValueError, match="4 hypotheses for 5 sentences"):
        read_hypotheses(str(log), expected=5)


def test_hypotheses_with_a_missing_sentence_are_refused(tmp_path):
    log = tmp_path / "generate.log"
    log.write_text("D-0\t-1\ta\nD-2\t-1\tc\n", encoding="utf-8")
    with pytest.raises(ValueError, match="2 hypotheses for 2 sentences"):
        read_hypotheses(str(log))


def test_read_log_separates_validation_from_training(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("\n".join([inner(25, 9), valid(25, 8), 'a | train | {"train_loss": "5"}', "noise"]) + "\n")
    rows = read_log(str(log))
    assert [r["num_updates"] for r in rows["train_inner"]] == ["25"]
    assert [r["valid_ppl"] for r in rows["valid"]] == ["8"]


def test_benchmark_counts_what_autograd_keeps_once_per_storage():
    import torch

    from lrdrop_cli.measure.benchmark import saved_for_backward_mb

    x = torch.randn(1024, requires_grad=True)
    # exp keeps its output (4 KiB); the sum keeps nothing; x itself is not saved
    assert saved_for_backward_mb(lambda: x.exp().sum()) == 4096 / 2**20
    # mul keeps both operands: x (4 KiB) and y (4 KiB); x twice is one storage
    y = torch.randn(1024, requires_grad=True)
    assert saved_for_backward_mb(lambda: (x * y).sum()) == 8192 / 2**20
    assert saved_for_backward_mb(lambda: (x * x).sum()) == 4096 / 2**20
    w = torch.nn.Parameter(torch.randn(1024))  # parameters are not activations
    assert saved_for_backward_mb(lambda: (x * w).sum(), exclude=[w]) == 4096 / 2**20

    def used_up_inside():  # a graph built and differentiated within the forward keeps nothing
        inner = (x * y).exp().sum()
        (g,) = torch.autograd.grad(inner, [x])
        # mul keeps g (x's gradient factor; g needs none, so x is not kept), exp its output
        return g.detach().mul(x).exp().sum()

    assert saved_for_backward_mb(used_up_inside) == 2 * 4096 / 2**20


def test_compare_summary_of_a_hand_written_log(tmp_path):
    """best valid nll, where, and the train/valid gap from the train records between the previous
    validation and the best one; a resumed run's repeated validation counts once."""
    from lrdrop_cli.pipelines.comparison import training_summary

    def v(update, nll):
        rec = {"valid_loss": str(nll + 1), "valid_nll_loss": str(nll), "valid_num_updates": str(update)}
        return "x | INFO | valid | " + json.dumps(rec)

    def t(update, nll):
        return "x | INFO | train_inner | " + json.dumps({"num_updates": str(update), "loss": "9", "nll_loss": str(nll)})

    lines = [t(10, 6.0), v(20, 5.5), t(30, 5.0), t(40, 4.0), v(40, 5.2), v(40, 5.2), t(50, 3.0), v(60, 5.3)]
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines) + "\n")
    s = training_summary(str(log))
    assert (s["best_valid_nll"], s["best_update"], s["updates"], s["final_valid_nll"]) == (5.2, 40, 60, 5.3)
    assert s["best_valid_loss"] == 6.2
    assert s["train_nll_at_best"] == 4.5  # updates 30 and 40: after the validation at 20, up to the best at 40
    assert s["gap"] == 0.7


def test_best_checkpoint_direction_follows_the_metric():
    from lrdrop_cli import runs

    schedule = runs.Schedule(lr=1e-3, warmup=1, max_tokens=100, updates=10)
    nll = runs.train_command(runs.TrainRun("d", "c", [], schedule))
    acc = runs.train_command(runs.TrainRun("d", "c", [], schedule, best_metric="accuracy"))
    assert (
        nll[nll.index("--best-checkpoint-metric") + 1] == "nll_loss" and "--maximize-best-checkpoint-metric" not in nll
    )
    assert acc[acc.index("--best-checkpoint-metric") + 1] == "accuracy" and "--maximize-best-checkpoint-metric" in acc


def test_hypotheses_command_prints_corpus_order(tmp_path, capsys):
    from lrdrop_cli.bin.hypotheses import main

    log = tmp_path / "gen.log"
    log.write_text("D-1\t-1\tsecond\nS-0\tsrc\nD-0\t-1\tfirst\n", encoding="utf-8")
    main([str(log), "--expect", "2"])
    assert capsys.readouterr().out == "first\nsecond\n"
    with pytest.raises(SystemExit, match="2 hypotheses for 3 sentences"):
        main([str(log), "--expect", "3"])
