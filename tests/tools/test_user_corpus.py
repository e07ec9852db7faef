"""The demos' own-corpus step (lrdrop_cli.steps.user_corpus): aligned files are split, misaligned
ones refused with both line counts before anything is written."""

import pytest

from lrdrop_cli.fairseq_io import StepFailed
from lrdrop_cli.steps import user_corpus


def _files(tmp_path, n_src, n_tgt):
    src, tgt = tmp_path / "a.txt", tmp_path / "b.txt"
    src.write_text("".join(f"quelle {i}\n" for i in range(n_src)), encoding="utf-8")
    tgt.write_text("".join(f"target {i}\n" for i in range(n_tgt)), encoding="utf-8")
    return str(src), str(tgt)


def test_misaligned_files_are_refused_with_both_counts(tmp_path):
    raw = tmp_path / "corpus"
    with pytest.raises(StepFailed, match="--source has 30 lines but --target has 29; they must be aligned"):
        user_corpus(str(raw), _files(tmp_path, 30, 29), ("--source", "--target"), ("de", "en"), "sentence", 3, 3, 1)
    assert not raw.exists()  # nothing split: zip would have dropped the last source line silently


def test_aligned_files_are_split_pair_by_pair(tmp_path):
    raw = tmp_path / "corpus"
    user_corpus(str(raw), _files(tmp_path, 30, 30), ("--source", "--target"), ("de", "en"), "sentence", 3, 3, 1)
    pairs = []
    for split, n in (("train", 24), ("valid", 3), ("test", 3)):
        de = (raw / f"{split}.de").read_text(encoding="utf-8").splitlines()
        en = (raw / f"{split}.en").read_text(encoding="utf-8").splitlines()
        assert len(de) == len(en) == n
        pairs += zip(de, en)
    assert sorted(pairs) == sorted((f"quelle {i}", f"target {i}") for i in range(30))
