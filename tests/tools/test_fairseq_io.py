"""Running fairseq and reading what it writes: progress lines, logs, hypotheses in corpus order."""

import json
import os
import sys

import pytest

from lrdrop_cli.fairseq_io import USER_DIR, StepFailed, TrainingProgress, read_hypotheses, read_log, run


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


def test_progress_line_says_when_the_minutes_cap_ends_the_run_first():
    """make demo's 25-minute cap: at 10 updates a minute, 2,800 updates would take 280 minutes; the
    line gives the cap's time left and the update the cap stops near, not ~280 min."""
    now = [0.0]
    progress = TrainingProgress(2800, clock=lambda: now[0], minutes=25)
    now[0] = 60.0
    progress(inner(10, 100))
    now[0] = 120.0  # 10 updates in a minute; 23 minutes of the cap left
    assert progress(inner(20, 90)) == (
        "[train] update 20/2800 (1%) | 2.0 min, ~23.0 min left (the 25-min cap stops it near update 250) "
        "| train ppl 90.0"
    )
    # a cap that the updates beat changes nothing
    fast = TrainingProgress(100, clock=lambda: now[0], minutes=25)
    now[0] = 180.0
    fast(inner(10, 100))
    now[0] = 240.0
    assert fast(inner(20, 90)).endswith("| 2.0 min, ~8.0 min left | train ppl 90.0")


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
    no_loss = 'a | INFO | train_inner | {"num_updates": "30"}'  # not a training record without its loss
    log.write_text("\n".join([inner(25, 9), valid(25, 8), 'a | train | {"train_loss": "5"}', no_loss, "noise"]) + "\n")
    rows = read_log(str(log))
    assert [r["num_updates"] for r in rows["train_inner"]] == ["25"]
    assert [r["valid_ppl"] for r in rows["valid"]] == ["8"]


def test_training_seconds_add_up_a_killed_and_resumed_runs_processes(tmp_path):
    """Each fairseq-train process (from its configuration line to its last line) counts; the gap
    while nothing ran does not; a process may cross midnight; untimed lines are skipped."""
    from lrdrop_cli.fairseq_io import training_seconds

    def line(stamp, text):
        return f"2026-12-0{stamp} | INFO | {text}"

    config = "fairseq_cli.train | {'_name': None, 'common': {}}"
    log = tmp_path / "train.log"
    log.write_text("\n".join([
        line("5 10:00:00", config), line("5 10:00:05", "fairseq.trainer | begin"), "a line without a time",
        line("5 10:30:00", "train_inner | " + '{"num_updates": "400", "loss": "5"}'),  # killed here: 30 min
        line("5 23:50:00", config), line("5 23:55:00", "fairseq.trainer | Loaded checkpoint"),
        line("6 00:10:30", "fairseq_cli.train | done training in 1230.0 seconds"),  # 20.5 min
    ]) + "\n")  # fmt: skip
    assert training_seconds(str(log)) == 30 * 60 + 20.5 * 60
    log.write_text("x | INFO | valid | {}\n")
    assert training_seconds(str(log)) == 0.0


def test_hypotheses_command_prints_corpus_order(tmp_path, capsys):
    from lrdrop_cli.bin.hypotheses import main

    log = tmp_path / "gen.log"
    log.write_text("D-1\t-1\tsecond\nS-0\tsrc\nD-0\t-1\tfirst\n", encoding="utf-8")
    main([str(log), "--expect", "2"])
    assert capsys.readouterr().out == "first\nsecond\n"
    with pytest.raises(SystemExit, match="2 hypotheses for 3 sentences"):
        main([str(log), "--expect", "3"])


# a child that writes what fairseq-train writes: noise, progress records, the end, then exits with argv[1]
FAKE_TRAIN = [
    sys.executable,
    "-c",
    "import os, sys; print('noise', os.environ.get('STEP_VAR'), os.environ.get('PYTHONUNBUFFERED')); "
    "print('x | INFO | train_inner | {}'); print('x | INFO | valid | {}'); "
    "print('x | INFO | fairseq_cli.train | done training'); sys.exit(int(sys.argv[1]))",
]
PROGRESS = ["x | INFO | train_inner | {}", "x | INFO | valid | {}", "x | INFO | fairseq_cli.train | done training"]


def test_run_logs_everything_and_shows_the_command_and_fairseqs_progress(tmp_path, capsys):
    log = str(tmp_path / "train.log")
    run([*FAKE_TRAIN, "0"], log=log, name="train", env={"STEP_VAR": "v"})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("$ " + sys.executable) and out[1:] == PROGRESS
    # the log has every line; the child saw the caller's variables and unbuffered output
    assert open(log).read().splitlines() == ["noise v 1", *PROGRESS]
    run([*FAKE_TRAIN, "0"], log=log, append=True, quiet=True)  # a resumed run continues its log
    assert open(log).read().splitlines() == ["noise v 1", *PROGRESS, "noise None 1", *PROGRESS]
    assert capsys.readouterr().out == ""  # quiet: nothing on the terminal
    run([*FAKE_TRAIN, "0"], log=log)  # a fresh run starts its log anew
    assert open(log).read().splitlines() == ["noise None 1", *PROGRESS]


def test_run_without_a_log_streams_every_line_and_show_rewrites_them(capsys):
    run([*FAKE_TRAIN, "0"])
    assert capsys.readouterr().out.splitlines()[1:] == ["noise None 1", *PROGRESS]
    run([*FAKE_TRAIN, "0"], show=lambda line: f"<{line.strip()}>" if "valid" in line else None)
    assert capsys.readouterr().out.splitlines()[1:] == ["<x | INFO | valid | {}>"]


@pytest.mark.parametrize("logged", [True, False])
def test_a_failed_step_is_named_with_its_exit_code_log_and_last_lines(tmp_path, logged):
    log = str(tmp_path / "train.log") if logged else None
    with pytest.raises(StepFailed) as e:
        run([*FAKE_TRAIN, "3"], log=log, name="train", quiet=True)
    msg = str(e.value)
    assert msg.startswith("step 'train' failed (exit 3)")
    assert ("; see " in msg) is logged and (not logged or f"; see {log};" in msg)
    assert msg.endswith("last output:\n" + "\n".join(["noise None 1", *PROGRESS]) + "\n")


def test_the_user_dir_is_the_installed_plugins_package_folder():
    assert os.path.isdir(USER_DIR) and os.path.basename(USER_DIR) == "lrdrop_fairseq"
    assert os.path.isfile(os.path.join(USER_DIR, "criterions", "lr_drop.py"))


def test_a_progress_record_without_a_loss_says_nothing():
    assert TrainingProgress(100)('x | INFO | train_inner | {"num_updates": "5"}') is None
