"""The compatibility fixes lrdrop_fairseq applies to fairseq."""

import logging
import subprocess
import sys

import numpy as np

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
