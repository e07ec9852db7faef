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
            "--modes",
            "baseline,rdrop,hidden,attn,lrdrop,lrdrop_layer",
            "--json",
            str(out),
        ]
    )
    res = json.loads(out.read_text())
    assert [r["mode"] for r in res["train"]] == ["baseline", "rdrop", "hidden", "attn", "lrdrop", "lrdrop_layer"]
    # each mode's criterion as modes.weights gives it (KL 5, layer terms 1), the site included
    options = {r["mode"]: r["criterion_options"] for r in res["train"]}
    assert options["baseline"] is None and options["rdrop"] == {"kl_weight": 5, "hidden_weight": 0, "attn_weight": 0}
    assert options["lrdrop"] == {"kl_weight": 5, "hidden_weight": 1, "attn_weight": 1, "hidden_site": "ffn"}
    assert options["lrdrop_layer"]["hidden_site"] == "layer"
    assert all(r["median_s"] > 0 and r["peak_mb"] > 0 for r in res["train"])
    assert res["generate"]["identical_hypotheses"] is True
    assert "| 4x8 | lrdrop |" in p.stdout
    # the recompute flags reach the criterion: every self-attention map recomputed, its gradient kept
    # from the forward, or nothing kept until the backward (a smaller graph)
    saved = []
    for again in ([], ["--attn-recompute-in-backward"]):
        lean = tmp_path / f"lean{len(again)}.json"
        run([tool("lrdrop-benchmark"), "--arch", "transformer_lrdrop_tiny", "--vocab", "60", "--shapes", "4x8",
             "--steps", "1", "--warmup", "0", "--gen-shape", "", "--modes", "attn", "--attn-small-map", "0",
             *again, "--json", str(lean)])  # fmt: skip
        saved.append(json.loads(lean.read_text())["train"][0]["saved_mb"])
    assert saved[1] < saved[0]


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
