"""Training curves (lrdrop-plot): panels, values and labels from hand-written logs."""

import json

import pytest
from conftest import curve_panels, run, tool

from lrdrop_cli.curves import present_panels, read_log


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
                            ("valid", {"valid_loss": "5.5", "valid_nll_loss": "4.25",
                                       "valid_num_updates": "10"})])  # fmt: skip
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


def test_a_run_cut_off_before_its_first_validation_still_plots_and_lines_say_what_they_are(tmp_path):
    """Training records alone draw (a run stopped early); validation is dashed with markers,
    training a plain line; a log with no records at all is refused with the fix."""
    from lrdrop_cli.curves import figure

    path = tmp_path / "early.log"
    path.write_text("".join(f"x | INFO | train_inner | {json.dumps({'loss': str(9 - u), 'num_updates': str(u)})}\n"
                            for u in (1, 2)))  # fmt: skip
    early = figure({"run": read_log(str(path))})
    assert _lines(early) == {"loss (bits/token)": {"run train": ([1.0, 2.0], [8.0, 7.0])}}
    both = tmp_path / "both.log"
    both.write_text(path.read_text() + 'x | INFO | valid | {"valid_loss": "7.5", "valid_num_updates": "2"}\n')
    styles = {
        line.get_label(): (line.get_linestyle(), line.get_marker())
        for line in figure({"run": read_log(str(both))}).axes[0].get_lines()
    }
    assert styles == {"run train": ("-", "None"), "run valid": ("--", "o")}
    empty = tmp_path / "empty.log"
    empty.write_text("no JSON here\n")
    with pytest.raises(ValueError, match="--log-format json"):
        figure({"run": read_log(str(empty))})
