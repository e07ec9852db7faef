"""A non-editable install runs the tools from any directory, with the installed plugin as --user-dir."""

import os
import site
import subprocess
import sys

from conftest import ROOT, run


def test_plugin_import_loads_no_tool_or_plotting_code():
    code = (
        "import sys, lrdrop_fairseq; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lrdrop_cli', 'matplotlib')); print(bad); assert not bad"
    )
    run([sys.executable, "-c", code])


def test_non_editable_install_runs_a_pipeline_outside_the_checkout(tmp_path):
    # A fresh venv that sees this venv's packages (torch, fairseq: not built again) through a
    # .pth line, but not its editable lrdrop-fairseq (a .pth inside a .pth'd folder is not read).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    venv_site = subprocess.run(
        [str(py), "-c", "import site; print(site.getsitepackages()[0])"], check=True, capture_output=True, text=True
    ).stdout.strip()
    with open(os.path.join(venv_site, "_base_packages.pth"), "w") as f:
        f.write(site.getsitepackages()[0] + "\n")
    build = tmp_path / "build"  # keep the checkout clean: build from a copy
    run(
        [
            "bash",
            "-c",
            f"mkdir -p {build} && git -C {ROOT} ls-files -z --cached --others --exclude-standard | "
            f"(cd {ROOT} && xargs -0 cp --parents -t {build})",
        ]
    )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            str(build),
        ],
        timeout=600,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run(
        [
            str(py),
            "-c",
            "import lrdrop_fairseq, lrdrop_cli.fairseq_io as io; print(lrdrop_fairseq.__file__); print(io.USER_DIR)",
        ],
        cwd=str(work),
    ).stdout
    assert ROOT not in where and venv_site in where
    # fairseq only through the [fairseq] extra: `pip install lrdrop-fairseq[hf]` builds no fairseq
    requires = run([str(py), "-c", "import importlib.metadata as m; print(m.requires('lrdrop-fairseq'))"],
                   cwd=str(work)).stdout  # fmt: skip
    fairseq_lines = [r for r in eval(requires) if r.startswith("fairseq")]
    assert fairseq_lines and all('extra == "fairseq"' in r for r in fairseq_lines), requires
    assert not any("extra" not in r for r in eval(requires) if not r.startswith("torch")), requires
    bin_dir = venv / "bin"
    run(
        [str(bin_dir / "lrdrop-make-toy-corpus"), "raw", "--train", "300", "--valid", "20", "--test", "20"],
        cwd=str(work),
    )
    small = (
        "--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 16 --decoder-embed-dim 16 "
        "--encoder-ffn-embed-dim 32 --decoder-ffn-embed-dim 32"
    )
    p = run(
        [
            str(bin_dir / "lrdrop-demo"),
            "--out",
            "demo",
            "--src",
            "raw/train.src",
            "--tgt",
            "raw/train.tgt",
            "--vocab",
            "40",
            "--valid-size",
            "20",
            "--test-size",
            "20",
            "--updates",
            "8",
            "--warmup",
            "2",
            "--max-tokens",
            "500",
            "--train-args",
            small,
        ],
        cwd=str(work),
    )
    assert "sacreBLEU on test (20 sentences)" in p.stdout
    log = (work / "demo" / "train.log").read_text()
    assert f"'user_dir': '{os.path.dirname(where.splitlines()[0])}'" in log
    assert (work / "demo" / "curves.png").is_file()


def test_the_hugging_face_adapter_runs_without_fairseq():
    """With fairseq unimportable, lrdrop_hf imports, trains a step and logs its terms: the core and
    the adapter import nothing of fairseq (an HF user installs .[hf], which has no fairseq)."""
    code = (
        "import sys; sys.modules['fairseq'] = None\n"
        "sys.path.insert(0, 'tests/hf')\n"
        "import torch; from models import tiny, batch\n"
        "from lrdrop_hf import LRDropArguments, lrdrop_loss\n"
        "m = tiny('bart', 0.1); m.train()\n"
        "loss, logs = lrdrop_loss(m, batch('bart'), LRDropArguments(hidden_weight=1.0, attn_weight=1.0))\n"
        "loss.backward(); print(sorted(logs))\n"
        "assert not any(k.split('.')[0] in ('fairseq', 'lrdrop_fairseq', 'lrdrop_cli') for k in sys.modules "
        "if sys.modules[k] is not None)\n"
    )
    out = run([sys.executable, "-c", code], cwd=ROOT).stdout
    assert "attn_loss" in out and "hidden_loss" in out
