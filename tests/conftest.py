import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)

import lrdrop_fairseq  # noqa: E402,F401  (registers archs/criterion for in-process tests)


def pytest_configure(config):
    """Under pytest-xdist (make test: one worker per core), one torch thread per worker: two
    workers of two threads each on two cores wait at every parallel op for a thread the other
    worker holds (a training step ran 3-4x slower so, measured beside another process)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def run(cmd, cwd=None, env=None, check=True, timeout=600):
    """Run a CLI as a user would; on failure show its output. A hang fails the test (timeout)."""
    # the recipes' Python is this interpreter, not ROOT/.venv's: the suite runs from any venv
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, **(env or {})}
    p = subprocess.run(
        cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    if check and p.returncode != 0:
        raise AssertionError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-6000:]}")
    return p


def tool(name):
    return os.path.join(BIN, name)


def curve_panels(png):
    """How many panels lrdrop-plot drew into ``png``, from the width in its PNG header: a wrong
    log, or a run's terms missing, changes the count."""
    from lrdrop_cli.curves import DPI, HEIGHT_INCHES, PANEL_INCHES

    with open(png, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert height == round(HEIGHT_INCHES * DPI)
    panels = width / (PANEL_INCHES * DPI)
    assert abs(panels - round(panels)) < 0.01, width
    return round(panels)


def _binarized_toy_corpus(d, joined: bool, uneven: bool = False):
    from lrdrop_cli.corpora.toy import write_corpus

    raw = write_corpus(str(d / "raw"), (("train", 600), ("valid", 60), ("test", 40)))
    if uneven:  # target i is its words repeated 1, 2 or 3 times: source/target ratios vary by sentence
        for split in ("train", "valid", "test"):
            path = os.path.join(raw, f"{split}.tgt")
            lines = open(path, encoding="utf-8").read().splitlines()
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(" ".join([line] * (i % 3 + 1)) + "\n" for i, line in enumerate(lines))
    run(
        [
            tool("fairseq-preprocess"),
            "--source-lang",
            "src",
            "--target-lang",
            "tgt",
            "--trainpref",
            f"{raw}/train",
            "--validpref",
            f"{raw}/valid",
            "--testpref",
            f"{raw}/test",
            "--destdir",
            str(d / "bin"),
            "--workers",
            "1",
            *(["--joined-dictionary"] if joined else []),
        ]
    )
    return str(d / "bin")


@pytest.fixture
def layer_terms_calls(monkeypatch):
    """What ``lrdrop.consistency.layer_terms`` is called with, by any adapter (fairseq or HF): a list
    with one ``{"records", "pads", "units"}`` per call; the real function still computes the terms."""
    from lrdrop import consistency

    calls, real = [], consistency.layer_terms

    def spy(records, pads, units, *args, **kwargs):
        calls.append({"records": records, "pads": pads, "units": units})
        return real(records, pads, units, *args, **kwargs)

    monkeypatch.setattr(consistency, "layer_terms", spy)
    return calls


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """A binarized toy translation corpus (see lrdrop-make-toy-corpus)."""
    return _binarized_toy_corpus(tmp_path_factory.mktemp("toy"), joined=False)


@pytest.fixture(scope="session")
def toy_data_uneven(tmp_path_factory):
    """The toy corpus with targets 1, 2 or 3 times their source's length, by sentence."""
    return _binarized_toy_corpus(tmp_path_factory.mktemp("toy_uneven"), joined=False, uneven=True)


@pytest.fixture(scope="session")
def toy_data_joined(tmp_path_factory):
    """The toy corpus with one joined dictionary (BART shares all embeddings)."""
    return _binarized_toy_corpus(tmp_path_factory.mktemp("toy_joined"), joined=True)


@pytest.fixture(scope="session")
def toy_sentences(tmp_path_factory):
    """The toy sentence-prediction corpus binarized twice: {"classification": DIR, "regression": DIR}."""
    from lrdrop_cli.corpora.toy import write_classification_corpus
    from lrdrop_cli.sentence_data import binarize

    d = tmp_path_factory.mktemp("toy_sentences")
    raw = write_classification_corpus(str(d / "raw"), (("train", 300), ("valid", 60), ("test", 40)))
    return {
        "classification": binarize(raw, str(d / "bin")),
        "regression": binarize(raw, str(d / "bin_regression"), label="score", regression=True),
    }
