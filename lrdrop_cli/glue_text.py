#!/usr/bin/env python
"""GLUE for fairseq's RoBERTa recipe: the tasks' columns and published hyperparameters, as data.

python -m lrdrop_cli.glue_text columns GLUE_DIR TASK OUT_DIR
    GLUE_DIR/TASK/{train,dev}.tsv (as download_glue_data.py writes them) ->
    OUT_DIR/{train,valid}.raw.input0 (and .raw.input1 for sentence pairs) and
    {train,valid}.label, the columns fairseq's examples/roberta/preprocess_GLUE_tasks.sh
    cuts; MNLI's dev_mismatched becomes ``test`` (it has labels; GLUE's test sets do
    not). Headers are dropped, QQP's malformed rows skipped, STS-B's scores divided by 5.

python -m lrdrop_cli.glue_text hparams TASK
    Shell assignments of fairseq's per-task RoBERTa settings (examples/roberta/README.glue.md):
    NUM_CLASSES, LR, MAX_SENTENCES, TOTAL_UPDATES, WARMUP, METRIC_ARGS (only the report flags
    the installed fairseq has; METRIC_NOTE says which are missing), and KL_PER_ALPHA: our
    output weight per unit of R-Drop's alpha (below).

R-Drop's GLUE loss is ``0.5 * (CE1 + CE2) + alpha * sum_batch (KL(p||q) + KL(q||p)) / 2``,
the cross-entropy averaged over the batch and the KL summed over it. Ours, divided by
fairseq's sample_size (the B sentences), is ``CE1 + CE2 + w * sum_batch (...) / 2 / B``: twice
R-Drop's when ``w = 2 * alpha * B`` (Adam does not see the factor 2). So KL_PER_ALPHA = 2 * B
(32 at batch 16, 64 at 32). A regression head (STS-B) compares the two predictions by their
mean squared difference, ``alpha * mean_batch (y1 - y2)^2``; ours sums and divides by B, so
there KL_PER_ALPHA = 2.
"""

import argparse
import os
import shlex
import sys
from typing import Dict, NamedTuple, Optional, Tuple


class GlueTask(NamedTuple):
    inputs: Tuple[int, ...]  # 1-based TSV columns of input0 (and input1)
    label: int  # 1-based label column of train (and dev, unless dev_label)
    num_classes: int
    lr: float
    max_sentences: int
    total_updates: int  # 10 epochs at max_sentences
    warmup: int  # 6% of total_updates
    metric_args: Tuple[str, ...]  # the task's own metric, logged by fairseq's sentence_prediction
    header: bool = True
    dev_label: Optional[int] = None
    fields: Optional[int] = None  # rows with another number of fields are skipped (QQP)


ACC = ("--best-checkpoint-metric", "accuracy", "--maximize-best-checkpoint-metric")
TASKS: Dict[str, GlueTask] = {
    "MNLI": GlueTask((9, 10), 12, 3, 1e-5, 32, 123873, 7432, ACC, dev_label=16),
    "QNLI": GlueTask((2, 3), 4, 2, 1e-5, 32, 33112, 1986, ACC),
    "QQP": GlueTask((4, 5), 6, 2, 1e-5, 32, 113272, 28318, ACC + ("--report-acc-and-f1",), fields=6),
    "RTE": GlueTask((2, 3), 4, 2, 2e-5, 16, 2036, 122, ACC),
    "SST-2": GlueTask((1,), 2, 2, 1e-5, 32, 20935, 1256, ACC),
    "MRPC": GlueTask((4, 5), 1, 2, 1e-5, 16, 2296, 137, ACC + ("--report-acc-and-f1",)),
    "CoLA": GlueTask((4,), 2, 2, 1e-5, 16, 5336, 320, ACC + ("--report-mcc",), header=False),
    "STS-B": GlueTask(
        (8, 9),
        10,
        1,
        2e-5,
        16,
        3598,
        214,
        ("--regression-target", "--best-checkpoint-metric", "loss", "--report-pearson-and-spearman"),
    ),  # fmt: skip
}
# split written -> GLUE file read
SPLIT_FILES = {"MNLI": {"train": "train", "valid": "dev_matched", "test": "dev_mismatched"}}
DEFAULT_SPLIT_FILES = {"train": "train", "valid": "dev"}


def task_named(name: str) -> GlueTask:
    if name not in TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def columns(glue_dir: str, name: str, out_dir: str) -> Dict[str, int]:
    """Write the input and label columns of each labelled split; returns rows per split."""
    task = task_named(name)
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for split, stem in SPLIT_FILES.get(name, DEFAULT_SPLIT_FILES).items():
        path = os.path.join(glue_dir, name, f"{stem}.tsv")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: download GLUE first (examples/glue/prepare.sh)")
        label_col = task.dev_label if (task.dev_label and split != "train") else task.label
        rows = []
        with open(path, encoding="utf-8", newline="\n") as f:
            lines = f.read().split("\n")
        for line in lines[1 if task.header else 0 :]:
            if not line.strip():
                continue
            fields = line.rstrip("\r").split("\t")
            if task.fields and len(fields) != task.fields:
                continue
            label = fields[label_col - 1]
            if task.num_classes == 1:
                label = f"{float(label) / 5.0:g}"  # STS-B: 0..5 -> 0..1, as fairseq's recipe
            rows.append([fields[c - 1] for c in task.inputs] + [label])
        for i in range(len(task.inputs)):
            _write(os.path.join(out_dir, f"{split}.raw.input{i}"), [r[i] for r in rows])
        _write(os.path.join(out_dir, f"{split}.label"), [r[-1] for r in rows])
        counts[split] = len(rows)
    return counts


def _write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


# report flag -> the SentencePredictionConfig field that later fairseq versions have
REPORT_FIELDS = {
    "--report-mcc": "report_mcc",
    "--report-acc-and-f1": "report_acc_and_f1",
    "--report-pearson-and-spearman": "report_pearson_and_spearman",
}


def installed_report_fields() -> set:
    from fairseq.criterions.sentence_prediction import SentencePredictionConfig

    return set(SentencePredictionConfig.__dataclass_fields__)


def metric_args(task: GlueTask, available: set) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """(the task's metric flags the installed fairseq accepts, the report flags it lacks)."""
    missing = tuple(a for a in task.metric_args if a in REPORT_FIELDS and REPORT_FIELDS[a] not in available)
    return tuple(a for a in task.metric_args if a not in missing), missing


def kl_per_alpha(task: GlueTask) -> int:
    """Our output weight per unit of R-Drop's alpha (module docstring)."""
    return 2 if task.num_classes == 1 else 2 * task.max_sentences


def hparams(name: str, available: Optional[set] = None) -> str:
    task = task_named(name)
    args, missing = metric_args(task, installed_report_fields() if available is None else available)
    note = ""
    if missing:
        note = (
            f"this fairseq has no {' '.join(missing)}: {name}'s own metric is not logged (accuracy/loss are); "
            "fairseq 0.12.2 predates those flags, fairseq-fixed 0.12.3.1 (Python >= 3.11) has them"
        )
    values = {
        "NUM_CLASSES": task.num_classes,
        "LR": f"{task.lr:g}",
        "MAX_SENTENCES": task.max_sentences,
        "TOTAL_UPDATES": task.total_updates,
        "WARMUP": task.warmup,
        "INPUTS": len(task.inputs),
        "METRIC_ARGS": "(" + " ".join(shlex.quote(a) for a in args) + ")",
        "METRIC_NOTE": shlex.quote(note),
        "KL_PER_ALPHA": kl_per_alpha(task),
    }
    return "\n".join(f"{k}={v}" for k, v in values.items())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("columns")
    c.add_argument("glue_dir")
    c.add_argument("task")
    c.add_argument("out_dir")
    h = sub.add_parser("hparams")
    h.add_argument("task")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "columns":
            counts = columns(a.glue_dir, a.task, a.out_dir)
            print(f"[glue] {a.task}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        else:
            print(hparams(a.task))
    except (ValueError, OSError, IndexError) as e:
        sys.exit(f"glue_text: {e}")


if __name__ == "__main__":
    main()
