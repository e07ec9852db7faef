"""scripts/libreoffice_study/gpu_grid.sh, the GPU grid of issue 28, run on CPU on the toy corpus: no
GPU is lent to CI, so this is what keeps the prepared command working until one is."""

import json
import os
import tarfile

from conftest import ROOT, run
from toy_pipelines import toy_data


def test_gpu_grid_script_runs_every_configuration_and_returns_few_files(tmp_path):
    data = toy_data(tmp_path)
    out, work = tmp_path / "out", tmp_path / "work"
    env = {
        "DEVICE": "cpu", "MODEL": "cpu", "DATA": str(data), "SEEDS": "1", "UPDATES": "4", "COMPUTE_RATIO": "2.6",
        "OUT": str(out), "WORK": str(work), "COMPARE_ARGS": "--warmup 2 --max-tokens 500",
        "TRAIN_ARGS": "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32 "
                      "--encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64",
    }  # fmt: skip
    p = run(["bash", os.path.join(ROOT, "scripts", "libreoffice_study", "gpu_grid.sh")], env=env)
    assert "4 updates (base_compute 10)" in p.stdout  # 4 x 2.6 = 10.4
    res = json.loads((out / "results.json").read_text())
    by_name = {r["name"]: r for r in res["runs"]}
    assert sorted(by_name) == [
        "attn-d0.3-s1", "base_compute-d0.1-s1", "baseline-d0.1-s1", "baseline-d0.3-s1", "lrdrop-d0.3-s1",
        "lrdrop_a01-d0.3-s1", "rdrop-d0.3-s1",
    ]  # fmt: skip
    assert {n: r["updates"] for n, r in by_name.items()} == {n: 10 if n.startswith("base_") else 4 for n in by_name}
    assert "--hidden-weight 0.1 --attn-weight 1 --hidden-site ffn" in by_name["lrdrop-d0.3-s1"]["flags"]
    assert by_name["lrdrop_a01-d0.3-s1"]["flags"].endswith("--hidden-weight 0.1 --attn-weight 0.1")
    assert "label_smoothed_cross_entropy" in by_name["base_compute-d0.1-s1"]["flags"]
    md = (out / "results.md").read_text()
    assert "| 0.1 | base_compute | 1 |" in md and "| 0.3 | lrdrop | 1 |" in md
    # what the device tool brings back: at most 8 plain files, none in a subfolder
    files = sorted(f.name for f in out.iterdir())
    assert all((out / f).is_file() for f in files) and len(files) <= 8, files
    with tarfile.open(out / "runs.tgz") as t:
        names = t.getnames()
    assert sum(n.endswith("/result.json") for n in names) == 7 and sum(n.endswith("/train.log") for n in names) == 7
    assert "training done" in (out / "grid.log").read_text()
