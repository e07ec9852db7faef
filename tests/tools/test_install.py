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
