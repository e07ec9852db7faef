"""lrdrop-benchmark-hf: every mode measured, and the graph memory ordered as the losses are
(R-Drop's doubled batch holds more than one copy; the layer terms add their maps and states)."""

import json

import pytest

pytest.importorskip("transformers")

from lrdrop_cli.measure import hf_benchmark  # noqa: E402


def test_benchmark_rows_and_memory_order(tmp_path, capsys):
    out = tmp_path / "hf.json"
    hf_benchmark.main(["--models", "bart", "--shapes", "4x16", "--layers", "1", "--dim", "64", "--vocab", "300",
                       "--steps", "1", "--warmup", "0", "--json", str(out)])  # fmt: skip
    rows = {r["mode"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["baseline", "rdrop", "attn", "lrdrop"]
    assert (
        rows["baseline"]["saved_mb"] < rows["rdrop"]["saved_mb"] < rows["attn"]["saved_mb"] < rows["lrdrop"]["saved_mb"]
    )
    assert all(r["median_s"] > 0 for r in rows.values())
    assert "| bart | 4x16 | lrdrop |" in capsys.readouterr().out
    # the shared modes, every term a mode has at weight 1, the hidden site included
    assert rows["baseline"]["loss_options"] is None
    assert rows["attn"]["loss_options"] == {"kl_weight": 1, "hidden_weight": 0, "attn_weight": 1}
    lrdrop = {"kl_weight": 1, "hidden_weight": 1, "attn_weight": 1, "hidden_site": "ffn"}
    assert rows["lrdrop"]["loss_options"] == lrdrop
    with pytest.raises(SystemExit, match="unknown --modes lrdrop_ffn; choose from baseline, rdrop, lrdrop, lrdrop_lay"):
        hf_benchmark.main(["--modes", "rdrop,lrdrop_ffn"])
    # the recompute flags reach the loss: with the maps recomputed in the backward, KL + attention
    # keeps the queries and keys (SDPA's math path on CPU does not share its own), not the maps
    saved = {}
    for name, extra in (("kept", []), ("lean", ["--attn-small-map", "0", "--attn-recompute-in-backward"])):
        hf_benchmark.main(["--models", "bart", "--shapes", "2x128", "--layers", "1", "--dim", "64", "--vocab", "300",
                           "--steps", "1", "--warmup", "0", "--modes", "rdrop,attn", *extra,
                           "--json", str(out)])  # fmt: skip
        saved[name] = {r["mode"]: r["saved_mb"] for r in json.loads(out.read_text())["rows"]}
    assert saved["lean"]["rdrop"] == saved["kept"]["rdrop"] < saved["lean"]["attn"] < saved["kept"]["attn"], saved
