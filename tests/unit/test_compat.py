"""The compatibility fixes lrdrop_fairseq applies to fairseq."""

import logging
import subprocess
import sys

import numpy as np
import pytest

import lrdrop_fairseq  # noqa: F401


def test_batch_by_size_keeps_the_remainder_batch():
    from fairseq.data import data_utils

    idx = np.arange(30, dtype=np.int64)
    batches = data_utils.batch_by_size(
        idx, None, num_tokens_vec=np.full(30, 5, dtype=np.int64), max_tokens=40, required_batch_size_multiple=8
    )
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(30))  # fairseq-fixed alone returned 24
    assert all(len(b) == 8 for b in batches[:-1]) and len(batches[-1]) == 6


@pytest.mark.parametrize("n", [30, 32], ids=["remainder", "no-remainder"])
@pytest.mark.parametrize("as_list", [False, True], ids=["array", "list"])
def test_the_remainder_batch_is_fairseqs_kind_and_only_when_needed(n, as_list):
    """Indices as a list or an array, the batches are int64 arrays covering each index once in
    order, and a corpus that fills its batches exactly gets no empty last batch."""
    from fairseq.data import data_utils

    idx = list(range(n)) if as_list else np.arange(n, dtype=np.int64)
    batches = data_utils.batch_by_size(idx, None, np.full(n, 5, dtype=np.int64), 40, None, 8)
    assert [len(b) for b in batches] == [8] * (n // 8) + ([n % 8] if n % 8 else [])
    assert all(isinstance(b, np.ndarray) and b.dtype == np.int64 for b in batches)
    assert np.concatenate(batches).tolist() == list(range(n))


def test_batch_by_size_keeps_fairseqs_defaults_and_is_patched_once():
    from fairseq.data import data_utils

    from lrdrop_fairseq.compat import keep_remainder_batches

    # no --required-batch-size-multiple: fairseq's default 1, so 7 sentences of 5 tokens fill 35
    batches = data_utils.batch_by_size(np.arange(30, dtype=np.int64), None, np.full(30, 5, dtype=np.int64), 35)
    assert [len(b) for b in batches] == [7, 7, 7, 7, 2]
    patched = data_utils.batch_by_size
    keep_remainder_batches()  # a second import path applies the fixes again: no second wrapper
    assert data_utils.batch_by_size is patched


def test_import_keeps_root_logger_level():
    code = (
        "import logging; logging.getLogger().setLevel(logging.WARNING); import lrdrop_fairseq; "
        "print(logging.getLogger().level, len(logging.getLogger().handlers))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True
    ).stdout.split()
    assert out == [str(logging.WARNING), "0"]


def test_fairseq_checkpoint_classes_are_safe_loadable(tmp_path):
    import argparse

    import torch

    path = tmp_path / "x.pt"
    torch.save({"args": argparse.Namespace(arch="transformer_lrdrop")}, path)
    assert torch.load(path)["args"].arch == "transformer_lrdrop"  # weights_only default, no error
