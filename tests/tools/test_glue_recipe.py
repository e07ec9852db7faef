"""The GLUE recipe's settings as data: metric flags by fairseq version, R-Drop's alpha in our
units, and label indices that make fairseq's F1 the positive class's."""

import os
import shlex

import pytest
from conftest import ROOT, run

from lrdrop_cli import glue_text
from lrdrop_cli.sentence_data import binarize

FIELDS_0_12_2 = {"classification_head_name", "regression_target"}  # no report_* fields
FIELDS_LATER = FIELDS_0_12_2 | set(glue_text.REPORT_FIELDS.values())


def shell_values(text):
    return {k: v for k, _, v in (line.partition("=") for line in text.splitlines())}


@pytest.mark.parametrize("task, flag", [("CoLA", "--report-mcc"), ("MRPC", "--report-acc-and-f1"),
                                        ("STS-B", "--report-pearson-and-spearman")])  # fmt: skip
def test_metric_flags_only_where_fairseq_has_them(task, flag):
    later = shell_values(glue_text.hparams(task, FIELDS_LATER))
    assert flag in shlex.split(later["METRIC_ARGS"].strip("()")) and later["METRIC_NOTE"] == "''"
    old = shell_values(glue_text.hparams(task, FIELDS_0_12_2))
    assert flag not in old["METRIC_ARGS"] and "--best-checkpoint-metric" in old["METRIC_ARGS"]
    assert flag in old["METRIC_NOTE"] and "0.12.2" in old["METRIC_NOTE"]
    assert glue_text.hparams("RTE", FIELDS_0_12_2) == glue_text.hparams("RTE", FIELDS_LATER)  # accuracy only


def test_hparams_ask_the_installed_fairseq_by_default():
    """Without a field list, hparams reads the installed fairseq's: CoLA's --report-mcc is passed
    exactly when the installed sentence_prediction criterion has it (fairseq-fixed does)."""
    installed = glue_text.installed_report_fields()
    assert "regression_target" in installed  # the real dataclass, not a stub
    out = glue_text.hparams("CoLA")
    assert out == glue_text.hparams("CoLA", installed)
    assert ("--report-mcc" in out) == ("report_mcc" in installed)


# fairseq's examples/roberta/README.glue.md, its table of per-task arguments, typed by hand:
# --num-classes, --lr, --max-sentences, --total-num-update, --warmup-updates
FAIRSEQ_GLUE_TABLE = {
    "MNLI": ("3", "1e-05", "32", "123873", "7432"),
    "QNLI": ("2", "1e-05", "32", "33112", "1986"),
    "QQP": ("2", "1e-05", "32", "113272", "28318"),
    "RTE": ("2", "2e-05", "16", "2036", "122"),
    "SST-2": ("2", "1e-05", "32", "20935", "1256"),
    "MRPC": ("2", "1e-05", "16", "2296", "137"),
    "CoLA": ("2", "1e-05", "16", "5336", "320"),
    "STS-B": ("1", "2e-05", "16", "3598", "214"),
}


@pytest.mark.parametrize("task", sorted(FAIRSEQ_GLUE_TABLE))
def test_hparams_follow_fairseqs_glue_table(task):
    values = shell_values(glue_text.hparams(task, FIELDS_LATER))
    keys = ("NUM_CLASSES", "LR", "MAX_SENTENCES", "TOTAL_UPDATES", "WARMUP")
    assert tuple(values[k] for k in keys) == FAIRSEQ_GLUE_TABLE[task]
    assert values["INPUTS"] == ("1" if task in ("SST-2", "CoLA") else "2")
    metric = shlex.split(values["METRIC_ARGS"].strip("()"))
    if task == "STS-B":  # "additionally add --regression-target --best-checkpoint-metric loss"
        assert metric[:3] == ["--regression-target", "--best-checkpoint-metric", "loss"]
        assert "--maximize-best-checkpoint-metric" not in metric
    else:
        assert metric[:3] == ["--best-checkpoint-metric", "accuracy", "--maximize-best-checkpoint-metric"]


def test_rdrop_alpha_in_our_units():
    """w = 2 x alpha x B for classification (CE averaged, KL summed over the batch in R-Drop's
    code; ours divides both by B and sums both copies' CE), 2 x alpha for regression."""
    assert glue_text.kl_per_alpha(glue_text.task_named("MRPC")) == 32  # batch 16
    assert glue_text.kl_per_alpha(glue_text.task_named("MNLI")) == 64  # batch 32
    assert glue_text.kl_per_alpha(glue_text.task_named("STS-B")) == 2


def test_integer_labels_keep_their_index(tmp_path):
    """MRPC-like: "1" is the frequent label. fairseq's frequency order would give it index 0;
    in numeric order index 1 is "1", the class whose F1 fairseq reports."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for split, labels in (("train", ["1", "1", "1", "0"]), ("valid", ["1", "0"])):
        (raw / f"{split}.input0").write_text("".join(f"{i} {i}\n" for i in range(len(labels))))
        (raw / f"{split}.label").write_text("\n".join(labels) + "\n")
    dest = binarize(str(raw), str(tmp_path / "bin"))
    from fairseq.data import Dictionary

    d = Dictionary.load(os.path.join(dest, "label", "dict.txt"))
    assert d.index("0") - d.nspecial == 0 and d.index("1") - d.nspecial == 1


def test_named_labels_keep_fairseqs_order(tmp_path):
    from lrdrop_cli.sentence_data import label_dictionary

    (tmp_path / "train.label").write_text("entailment\nneutral\n")
    assert label_dictionary(str(tmp_path / "train.label"), str(tmp_path / "order.txt")) is None
    (tmp_path / "train.label").write_text("2\n10\n1\n")
    assert label_dictionary(str(tmp_path / "train.label"), str(tmp_path / "order.txt")) is not None
    assert (tmp_path / "order.txt").read_text() == "1 1\n2 1\n10 1\n"


def test_evaluate_shows_a_crash_instead_of_hiding_it(tmp_path, toy_sentences):
    """glue/evaluate.sh on a file that is no checkpoint: the error reaches the user, exit 1."""
    fake = tmp_path / "checkpoint_best.pt"
    fake.write_bytes(b"not a checkpoint")
    evaluate = os.path.join(ROOT, "examples", "glue", "evaluate.sh")
    p = run(["bash", evaluate, "RTE", str(fake)], env={"DATA": toy_sentences["classification"]}, check=False)
    assert p.returncode == 1
    assert "fairseq-validate failed" in p.stdout and "Traceback" in p.stdout
    assert (tmp_path / "evaluate-RTE.log").is_file()


def test_sentence_pairs_share_a_dictionary_built_from_both_columns(tmp_path):
    """input1 is binarized with the same dictionary as input0, and a word that only input1 has
    ("tiger") is in it: decoding DEST/input1 gives back the raw lines, no <unk>."""
    from fairseq.data import Dictionary, data_utils

    raw = tmp_path / "raw"
    raw.mkdir()
    columns = {
        "train": (["a cat sat", "a dog ran", "the cat ran"], ["the dog sat", "a tiger ran", "a cat"], ["1", "0", "1"]),
        "valid": (["the dog", "a cat"], ["a tiger sat", "the cat"], ["0", "1"]),
    }
    for split, (first, second, labels) in columns.items():
        (raw / f"{split}.input0").write_text("\n".join(first) + "\n")
        (raw / f"{split}.input1").write_text("\n".join(second) + "\n")
        (raw / f"{split}.label").write_text("\n".join(labels) + "\n")
    dest = binarize(str(raw), str(tmp_path / "bin"))
    d0 = Dictionary.load(os.path.join(dest, "input0", "dict.txt"))
    d1 = Dictionary.load(os.path.join(dest, "input1", "dict.txt"))
    assert d0.symbols == d1.symbols and "tiger" in d0.symbols
    for split, (first, second, _) in columns.items():
        for column, lines in (("input0", first), ("input1", second)):
            ds = data_utils.load_indexed_dataset(os.path.join(dest, column, split), d0)
            assert [d0.string(ds[i][:-1]) for i in range(len(ds))] == lines  # [:-1]: </s>
