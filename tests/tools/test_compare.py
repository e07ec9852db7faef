"""lrdrop-compare: configurations, seeds, variants, dropouts, convergence, resume and the report."""

import argparse
import json

import pytest
import sacrebleu
from conftest import curve_panels, run, tool
from toy_pipelines import interrupt_when, log_says, toy_data

from lrdrop_cli.fairseq_io import read_log


def test_compare_script_runs_configs_seeds_and_sweep(tmp_path):
    """lrdrop-compare on a toy corpus: same updates for every run, table with mean ± sd, resumes."""
    data = toy_data(tmp_path)
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


def test_compare_until_convergence_resumes_after_interruption(tmp_path):
    """compare.py --patience: stops on validation perplexity; killed mid-run, the same command
    goes on from the run's last checkpoint instead of update 0."""
    data = toy_data(tmp_path)
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
    interrupt_when(cmd, log_says(run_dir / "train.log", "Saved checkpoint"))
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
    nll = {("rdrop", 0.1): (4.0, 4.2), ("baseline", 0.1): (4.5, 4.4),
           ("rdrop", 0.3): (3.0, 3.1), ("baseline", 0.3): (3.2, 3.7)}  # fmt: skip
    for (cfg, dropout), scores in bleu.items():
        for seed, score in zip((1, 2), scores):
            d = out / f"{cfg}-d{dropout:g}-s{seed}"
            d.mkdir(parents=True)
            result = {"name": d.name, "seed": seed, "dropout": dropout, "bleu": score, "chrf": 2.0 * score,
                      "best_valid_nll": nll[cfg, dropout][seed - 1], "best_update": 100 * seed,
                      "train_minutes": 1.0}  # fmt: skip
            (d / "result.json").write_text(json.dumps(result))
            record = {"valid_loss": "5", "valid_nll_loss": "4", "valid_num_updates": "100"}
            (d / "train.log").write_text("x | INFO | valid | " + json.dumps(record) + "\n")
    # a run finished by older code counted only its last process: its minutes come from the log
    (out / "rdrop-d0.3-s2" / "train.log").write_text(
        "2026-12-05 10:00:00 | INFO | fairseq_cli.train | {'_name': None}\n"
        "2026-12-05 10:02:00 | INFO | fairseq.trainer | killed after this line\n"
        "2026-12-05 10:03:00 | INFO | fairseq_cli.train | {'_name': None}\n"
        "2026-12-05 10:09:00 | INFO | valid | " + json.dumps(record) + "\n"
    )
    p = run([tool("lrdrop-compare"), "--out", str(out), "--data-bin", str(tmp_path), "--raw", str(raw), "--report",
             "--configs", "baseline,rdrop", "--seeds", "1,2", "--dropouts", "0.1,0.3"])  # fmt: skip
    assert "8 of 8 runs finished" in p.stdout
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in (out / "results.md").read_text().splitlines()[2:]
        if line.startswith("|")
    ]
    assert "level: the mean is inside the seed spread" in (out / "results.md").read_text()
    cells = {(r[0], r[1]): r for r in rows}
    assert list(cells) == [("0.1", "baseline"), ("0.1", "rdrop"), ("0.3", "baseline"), ("0.3", "rdrop")]
    # columns: nll mean ± sd, nll vs R-Drop, BLEU mean ± sd, per seed, BLEU vs R-Drop, chrF
    # with the reading: level when the mean paired difference is inside the larger seed sd of the two
    # (0.1 BLEU: |-1.50| > R-Drop's 1.41, worse; 0.3 BLEU: |-1.00| <= the baseline's 2.12, level)
    assert cells["0.1", "baseline"][3:9] == ["4.450 ± 0.071", "0.350 ± 0.212 (worse)", "9.50 ± 0.71", "9.00, 10.00",
                                             "-1.50 ± 0.71 (worse)", "19.00 ± 1.41"]  # fmt: skip
    assert cells["0.3", "baseline"][3:9] == ["3.450 ± 0.354", "0.400 ± 0.283 (worse)", "19.50 ± 2.12",
                                             "18.00, 21.00", "-1.00 ± 1.41 (level)", "39.00 ± 4.24"]  # fmt: skip
    assert cells["0.3", "rdrop"][4] == cells["0.3", "rdrop"][7] == ""  # no difference of R-Drop from itself
    # minutes per run: result.json's 1.0, except the timed log's 2 + 6
    assert cells["0.3", "rdrop"][-1] == "4.5" and cells["0.1", "rdrop"][-1] == "1.0"
    runs = {r["name"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert runs["rdrop-d0.3-s2"]["train_minutes"] == 8.0
    assert curve_panels(out / "curves-d0.1.png") == curve_panels(out / "curves-d0.3.png") == 2


def test_compare_summary_of_a_hand_written_log(tmp_path):
    """best valid nll, where, and the train/valid gap from the train records between the previous
    validation and the best one; a resumed run's repeated validation counts once."""
    from lrdrop_cli.pipelines.comparison import training_summary

    def v(update, nll):
        rec = {"valid_loss": str(nll + 1), "valid_nll_loss": str(nll), "valid_num_updates": str(update)}
        return "x | INFO | valid | " + json.dumps(rec)

    def t(update, nll):
        return "x | INFO | train_inner | " + json.dumps({"num_updates": str(update), "loss": "9", "nll_loss": str(nll)})

    lines = [t(10, 6.0), t(20, 99.0), v(20, 5.5), t(30, 5.0), t(40, 4.0), v(40, 5.2), v(40, 5.2), t(50, 3.0)]
    lines.append(v(60, 5.3))
    log = tmp_path / "train.log"
    log.write_text("\n".join(lines) + "\n")
    s = training_summary(str(log))
    assert (s["best_valid_nll"], s["best_update"], s["updates"], s["final_valid_nll"]) == (5.2, 40, 60, 5.3)
    assert s["best_valid_loss"] == 6.2
    # updates 30 and 40: after the validation at 20 (update 20's record is before it), up to the best at 40
    assert s["train_nll_at_best"] == 4.5
    assert s["gap"] == 0.7
    # the best is the first validation: the train records from the start up to it
    log.write_text("\n".join([t(1, 9.0), t(10, 7.0), v(20, 5.0), t(30, 4.0), v(40, 5.5)]) + "\n")
    s = training_summary(str(log))
    assert (s["best_update"], s["train_nll_at_best"], s["final_valid_nll"]) == (20, 8.0, 5.5)


def test_table_of_one_seed_and_of_seeds_that_do_not_pair():
    """A configuration with one run shows sd 0 and "one seed"; the difference from R-Drop pairs only
    the seeds both have (the baseline's seed 3 has no R-Drop run); columns by hand."""
    from lrdrop_cli.pipelines.comparison import table

    def run(cfg, seed, nll, bleu, **extra):
        return {"config": cfg, "dropout": 0.1, "seed": seed, "best_valid_nll": nll, "bleu": bleu,
                "chrf": 2 * bleu, "best_update": 1000 * seed, "gap": 0.1 * seed, "train_minutes": 10.0 * seed,
                **extra}  # fmt: skip

    results = [run("rdrop", 1, 2.50, 30.0), run("rdrop", 2, 2.60, 31.0),
               run("baseline", 1, 2.70, 28.0), run("baseline", 2, 2.70, 29.0), run("baseline", 3, 2.40, 35.0),
               run("attn", 2, 3.10, 10.0)]  # fmt: skip
    rows = {r.split("|")[2].strip(): [c.strip() for c in r.strip("|").split("|")]
            for r in table(results, ["baseline", "rdrop", "attn"]).splitlines()[2:]}  # fmt: skip
    assert rows["attn"][2:] == ["1", "3.100 ± 0.000", "0.500 ± 0.000 (one seed)", "10.00 ± 0.00", "10.00",
                                "-21.00 ± 0.00 (one seed)", "20.00 ± 0.00", "2000", "0.20", "20.0"]  # fmt: skip
    # baseline minus R-Drop for seeds 1 and 2: nll 0.20 and 0.10, BLEU -2 and -2
    base = rows["baseline"]
    assert base[2:4] == ["3", "2.600 ± 0.173"]
    assert base[4] == "0.150 ± 0.071 (level)"  # inside the baseline's sd 0.173
    assert base[7] == "-2.00 ± 0.00 (level)"  # inside the baseline's BLEU sd 3.79 (all three seeds)
    assert base[9:] == ["2000", "0.20", "20.0"]
    assert rows["rdrop"][4] == rows["rdrop"][7] == ""


def test_variant_flags_choose_the_mode_and_the_budget():
    """--variant's own flags: --mode extends another mode, --max-update is that run's budget (the
    schedule decays over it); the rest are lr_drop flags appended after the mode's."""
    from lrdrop_cli.pipelines import comparison as compare

    variants = compare.parse_variants(
        ["long=--mode baseline --max-update 21000", "ffn=--hidden-weight 0.1 --hidden-site ffn", "a2=--mode attn"]
    )
    assert variants == {
        "long": ("baseline", [], 21000),
        "ffn": ("rdrop", ["--hidden-weight", "0.1", "--hidden-site", "ffn"], None),
        "a2": ("attn", [], None),
    }
    a = argparse.Namespace(seeds="1", dropouts="0.1", configs="rdrop", variants=variants,
                           kl_weight=1.0, hidden_weight=None, attn_weight=None)  # fmt: skip
    by_name = {r.name: r for r in compare.plan(a)}
    assert by_name["long-d0.1-s1"].updates == 21000 and by_name["rdrop-d0.1-s1"].updates is None
    assert by_name["long-d0.1-s1"].flags == ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"]
    assert by_name["ffn-d0.1-s1"].flags[-4:] == ["--hidden-weight", "0.1", "--hidden-site", "ffn"]
    assert by_name["a2-d0.1-s1"].flags[-2:] == ["--attn-weight", "0.1"]
    assert [r.name for r in compare.plan(a)][-1] == "long-d0.1-s1"  # the baseline last in its seed
    vars(a).update(patience=0, max_update=8000)
    assert compare.budget_text(a) == "8000 updates each (long: 21000 updates)"
    vars(a).update(patience=5, variants={})
    assert compare.budget_text(a) == "until valid nll stops improving for 5 validations (cap 8000)"
    for bad, why in (
        ("x=--mode nonsense", "--mode 'nonsense'"),
        ("x=--max-update 0", "--max-update '0'"),
        ("x=--max-update", "--max-update needs a value"),
        ("x=--mode baseline --attn-weight 1", "a baseline variant takes no lr_drop flags"),
    ):
        with pytest.raises(SystemExit, match=why):
            compare.parse_variants([bad])


def test_reading_of_a_paired_difference():
    """Inside the seed spread is level; lower nll and higher BLEU are better; one seed is no reading."""
    from lrdrop_cli.pipelines.comparison import reading

    nll, rdrop_nll = [2.50, 2.60, 2.70], [2.80, 2.85, 2.90]  # sds 0.10 and 0.05
    assert reading([-0.30, -0.25, -0.20], nll, rdrop_nll, higher_is_better=False) == "better"
    assert reading([0.30, 0.25, 0.20], nll, rdrop_nll, higher_is_better=False) == "worse"
    assert reading([0.30, 0.25, 0.20], nll, rdrop_nll, higher_is_better=True) == "better"
    assert reading([0.10, 0.10, 0.10], nll, rdrop_nll, higher_is_better=False) == "level"  # = the spread
    assert reading([0.11, 0.11, 0.11], nll, rdrop_nll, higher_is_better=False) == "worse"
    assert reading([0.11, 0.11, 0.11], [2.5, 2.5, 2.5], [2.0, 2.3, 2.6], False) == "level"  # R-Drop's sd 0.3
    assert reading([5.0], [30.0], [25.0], higher_is_better=True) == "one seed"


def test_report_of_results_restored_without_their_logs(tmp_path):
    """A grid restored from the committed results (the machine lost its runs' folders) has
    result.json files but no training logs: --report tabulates them with result.json's minutes,
    and draws no figure for a dropout whose first seed lacks a log (removing a stale one) rather
    than one that silently leaves runs out."""
    out, raw = tmp_path / "cmp", tmp_path / "corpus"
    raw.mkdir()
    (raw / "test.en").write_text("a\n")
    record = {"valid_loss": "5", "valid_nll_loss": "4", "valid_num_updates": "100"}
    for dropout, with_log in ((0.1, True), (0.3, False)):
        name = f"rdrop-d{dropout}-s1"
        d = out / name
        d.mkdir(parents=True)
        result = {"name": name, "seed": 1, "dropout": dropout, "bleu": 10.0, "chrf": 20.0,
                  "best_valid_nll": 4.0, "best_update": 100, "train_minutes": 7.5}  # fmt: skip
        (d / "result.json").write_text(json.dumps(result))
        if with_log:
            (d / "train.log").write_text("x | INFO | valid | " + json.dumps(record) + "\n")
    (out / "curves-d0.3.png").write_bytes(b"stale")
    p = run([tool("lrdrop-compare"), "--out", str(out), "--data-bin", str(tmp_path), "--raw", str(raw), "--report",
             "--configs", "rdrop", "--seeds", "1", "--dropouts", "0.1,0.3"])  # fmt: skip
    assert "2 of 2 runs finished" in p.stdout
    assert f"no curves-d0.3.png: no training log at {out / 'rdrop-d0.3-s1' / 'train.log'}" in p.stdout
    assert curve_panels(out / "curves-d0.1.png") == 2 and not (out / "curves-d0.3.png").exists()
    runs = {r["name"]: r for r in json.loads((out / "results.json").read_text())["runs"]}
    assert runs["rdrop-d0.3-s1"]["train_minutes"] == 7.5
