"""lrdrop-benchmark on a tiny model: every mode, and generation with copied weights."""

import json

from conftest import run, tool


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
