"""Sentence-prediction data in fairseq's GLUE layout, and predictions from a trained model.

Raw text, one example a line: ``SPLIT.input0`` (and ``SPLIT.input1`` for sentence
pairs), already tokenised the way the model's dictionary expects (BPE pieces or
words), and ``SPLIT.LABEL`` (a class name, or numbers with ``--regression-target``).
:func:`binarize` turns them into what ``--task sentence_prediction`` reads:
``DEST/input0``, ``DEST/input1`` and ``DEST/label``, as fairseq's
``examples/roberta/preprocess_GLUE_tasks.sh`` does. Both inputs share one dictionary: the
pretrained model's (``--srcdict``), or else one built from train.input0 and train.input1 together.
"""

import argparse
import os
import shutil
import sys
from typing import List, Optional, Sequence

from lrdrop_cli.fairseq_io import fairseq_command, run

SPLITS = ("train", "valid", "test")


def binarize(
    raw_dir: str,
    dest: str,
    label: str = "label",
    regression: bool = False,
    srcdict: Optional[str] = None,
    log: Optional[str] = None,
    splits: Sequence[str] = SPLITS,
    labels_dir: Optional[str] = None,
) -> str:
    """fairseq-preprocess each input column and the labels of ``splits`` (train first); returns ``dest``.
    ``srcdict``: a fixed input dictionary (a pretrained model's); default: built from train.
    ``labels_dir``: where the label files are, if not with the inputs (untokenised labels)."""
    labels_dir = labels_dir or raw_dir
    splits = [s for s in splits if os.path.isfile(os.path.join(raw_dir, f"{s}.input0"))]
    if not splits or splits[0] != "train":
        raise FileNotFoundError(f"{raw_dir}: no train.input0 (expected SPLIT.input0 files, one example a line)")
    inputs = [c for c in ("input0", "input1") if os.path.isfile(os.path.join(raw_dir, f"train.{c}"))]
    if not srcdict and len(inputs) == 2:
        # both columns go through one embedding table: a word seen only in input1 must be in it too
        srcdict = _joint_dictionary(raw_dir, os.path.join(dest, "joint_dict"), log)
    for column in inputs:
        _preprocess(raw_dir, column, os.path.join(dest, column), splits, srcdict, log)
        srcdict = srcdict or os.path.join(dest, "input0", "dict.txt")
    if regression:
        os.makedirs(os.path.join(dest, "label"), exist_ok=True)
        for split in splits:
            shutil.copyfile(os.path.join(labels_dir, f"{split}.{label}"), os.path.join(dest, "label", f"{split}.label"))
    else:
        os.makedirs(os.path.join(dest, "label"), exist_ok=True)
        fixed = label_dictionary(os.path.join(labels_dir, f"train.{label}"), os.path.join(dest, "label", "order.txt"))
        _preprocess(labels_dir, label, os.path.join(dest, "label"), splits, fixed, log)
    return dest


def label_dictionary(train_labels: str, out: str) -> Optional[str]:
    """For integer labels ("0", "1", ...), a label dictionary in numeric order written to ``out``
    (returned), so that class index k is label "k". fairseq's own order is by frequency, which
    for MRPC (68% "1") makes index 1 the label "0", and the F1 that fairseq reports (of index 1)
    the F1 of the negative class. Other labels (MNLI's names): None, fairseq's order."""
    with open(train_labels, encoding="utf-8") as f:
        labels = {line.strip() for line in f if line.strip()}
    if not labels or not all(x.isdigit() for x in labels):
        return None
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(f"{x} 1\n" for x in sorted(labels, key=int))
    return out


def _joint_dictionary(raw_dir, destdir, log) -> str:
    """One dictionary from train.input0 and train.input1 together; returns its path."""
    os.makedirs(destdir, exist_ok=True)
    both = os.path.join(destdir, "train.both")
    with open(both, "w", encoding="utf-8") as out:
        for column in ("input0", "input1"):
            with open(os.path.join(raw_dir, f"train.{column}"), encoding="utf-8") as f:
                shutil.copyfileobj(f, out)
    args = ["--only-source", "--dict-only", "--trainpref", both, "--destdir", destdir, "--workers", "1"]
    run(fairseq_command("preprocess", *args), log=log, name="dictionary of input0+input1", append=True, quiet=True)
    os.remove(both)
    return os.path.join(destdir, "dict.txt")


def _preprocess(raw_dir, suffix, destdir, splits, srcdict, log):
    prefs = {"train": "--trainpref", "valid": "--validpref", "test": "--testpref"}
    args = ["--only-source", "--destdir", destdir, "--workers", "1"]
    for split in splits:
        args += [prefs[split], os.path.join(raw_dir, f"{split}.{suffix}")]
    if srcdict:
        args += ["--srcdict", srcdict]
    run(fairseq_command("preprocess", *args), log=log, name=f"binarize {suffix}", append=True, quiet=True)


def load_classifier(checkpoint: str, data_bin: str):
    """(model in eval mode, task) from a sentence_prediction checkpoint, on CPU."""
    import lrdrop_fairseq  # noqa: F401  (registers the _lrdrop archs and criteria)

    # isort: split
    from fairseq import checkpoint_utils

    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data_bin})
    model = models[0]
    model.eval()
    return model, task


def predict(model, task, lines: List[str], head: str = "sentence_classification_head", batch_size: int = 64):
    """Class names (or numbers, for a regression head) for tokenised ``lines`` of input0."""
    import torch
    from fairseq.data import data_utils

    src_dict = task.source_dictionary
    init = [task.cfg.init_token] if task.cfg.init_token is not None else []
    max_len = task.cfg.max_positions
    out = []
    for start in range(0, len(lines), batch_size):
        batch = [
            torch.tensor(init + src_dict.encode_line(line, add_if_not_exist=False).tolist()[: max_len - len(init)])
            for line in lines[start : start + batch_size]
        ]
        tokens = data_utils.collate_tokens(batch, pad_idx=src_dict.pad())
        with torch.no_grad():
            logits, _ = model(tokens, features_only=True, classification_head_name=head)
        if task.cfg.regression_target:
            out += logits.squeeze(-1).tolist()
        else:
            label_dict = task.label_dictionary
            out += [label_dict.string([i + label_dict.nspecial]) for i in logits.argmax(-1).tolist()]
    return out


def main(argv=None):
    """``python -m lrdrop_cli.sentence_data RAW_DIR DEST [--regression] [--srcdict DICT]``: binarize."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir", help="SPLIT.input0 (SPLIT.input1), tokenised, and SPLIT.LABEL")
    ap.add_argument("dest")
    ap.add_argument("--label", default="label", help="suffix of the label files (default label)")
    ap.add_argument("--regression", action="store_true", help="labels are numbers (--regression-target)")
    ap.add_argument("--srcdict", help="the pretrained model's dictionary (default: built from train)")
    a = ap.parse_args(argv)
    try:
        binarize(a.raw_dir, a.dest, a.label, a.regression, a.srcdict, log=os.path.join(a.dest, "preprocess.log"))
    except (OSError, RuntimeError) as e:
        sys.exit(f"sentence_data: {e}")
    print(f"[binarize] done: {a.dest}")


if __name__ == "__main__":
    main()
