"""Build fairseq objects in-process from command-line style arguments."""

import argparse
import json

import torch
from fairseq import options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

TINY = [
    "--encoder-layers",
    "2",
    "--decoder-layers",
    "2",
    "--encoder-embed-dim",
    "16",
    "--decoder-embed-dim",
    "16",
    "--encoder-ffn-embed-dim",
    "32",
    "--decoder-ffn-embed-dim",
    "32",
    "--encoder-attention-heads",
    "2",
    "--decoder-attention-heads",
    "2",
]


def build(data, arch="transformer_lrdrop_tiny", criterion="lr_drop", extra=(), dropout=0.1):
    """(task, model, criterion) for a toy translation corpus, built as fairseq-train does."""
    return build_from_args([data, "--label-smoothing", "0.1", *_model_and_loss(arch, criterion, dropout, TINY), *extra])


def _model_and_loss(arch, criterion, dropout, shapes):
    return [
        "--arch",
        arch,
        "--criterion",
        criterion,
        "--dropout",
        str(dropout),
        "--attention-dropout",
        str(dropout),
        "--cpu",
        "--seed",
        "1",
        "--max-tokens",
        "400",
        *shapes,
    ]


def build_from_args(input_args):
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=input_args)
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    crit = task.build_criterion(cfg.criterion)
    return task, model, crit


def reduced(criterion_cls, logging_outputs):
    """What fairseq logs for these workers' logging outputs: the criterion's reduce_metrics, smoothed."""
    from fairseq.logging import metrics

    with metrics.aggregate(new_root=True) as agg:
        criterion_cls.reduce_metrics(logging_outputs)
    return agg.get_smoothed_values()


def first_batch(task, max_tokens=400):
    itr = task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=max_tokens, seed=1, ignore_invalid_inputs=True
    ).next_epoch_itr(shuffle=False)
    return next(iter(itr))


TINY_ENCODER = [
    "--encoder-layers",
    "2",
    "--encoder-embed-dim",
    "16",
    "--encoder-ffn-embed-dim",
    "32",
    "--encoder-attention-heads",
    "2",
]


def sentence_args(data, arch="roberta_lrdrop", criterion="lr_drop_sentence_prediction", extra=(), dropout=0.1):
    """fairseq-train arguments for the toy sentence-prediction corpus (2 classes, GLUE-style tokens)."""
    return [
        data,
        "--task",
        "sentence_prediction",
        "--num-classes",
        "2",
        "--init-token",
        "0",
        "--separator-token",
        "2",
        "--max-positions",
        "64",
        *_model_and_loss(arch, criterion, dropout, TINY_ENCODER if arch.startswith("roberta") else TINY),
        *extra,
    ]


def build_sentence(data, arch="roberta_lrdrop", criterion="lr_drop_sentence_prediction", extra=(), dropout=0.1):
    """(task, model, criterion) for the toy sentence-prediction corpus, built as fairseq-train does."""
    return build_from_args(sentence_args(data, arch, criterion, extra, dropout))


def hooked_forward(crit, model, sample, hook_modules, seed=7, **forward_kwargs):
    """The criterion's doubled training forward again (same dropout masks as ``seed``'s),
    returning what each hooked module output: {name: [output per call]}, and the model output."""
    outputs = {name: [] for name in hook_modules}
    handles = []
    for name, modules in hook_modules.items():
        for m in modules:
            handles.append(
                m.register_forward_hook(
                    lambda _m, _i, out, keep=outputs[name]: keep.append(out[0] if isinstance(out, tuple) else out)
                )
            )
    model.train()
    torch.manual_seed(seed)
    doubled = {k: torch.cat([v, v]) for k, v in sample["net_input"].items()}
    try:
        net_output = model(**doubled, lrdrop_record=crit.record_spec, **forward_kwargs)
    finally:
        for h in handles:
            h.remove()
    return outputs, net_output


def per_sentence_sum(per_pos, pad, units):
    """The layer terms' reduction, written out: (sum over sentences b of ``units[b]`` x the mean of
    ``per_pos[b]`` over b's real positions, the same with the pads counted as real positions, as a
    missing mask would). ``per_pos``, ``pad``: (B, T), True = pad; ``units``: (B,)."""
    real = (~pad).float()
    masked = (per_pos * real).sum(1) / real.sum(1) * units
    return masked.sum(), (per_pos.mean(1) * units).sum()


def masked_mse(h, pad, units):
    """:func:`per_sentence_sum` of mean_C (h1 - h2)^2 for a (T, 2B, C) state of a doubled batch;
    ``pad`` (B, T), True = pad."""
    h1, h2 = h.float().chunk(2, dim=1)
    return per_sentence_sum((h1 - h2).pow(2).mean(-1).t(), pad, units)


# ------------------------------------------------------------------ shared by the sentence-prediction tests
HEAD = {"features_only": True, "classification_head_name": "sentence_classification_head"}
REGRESSION = ["--regression-target", "--num-classes", "1"]


def random_official_roberta(data, path):
    """A random roberta-shaped checkpoint laid out like the official roberta.base/model.pt:
    the masked-LM model's state (LM head, no classification head) with an argparse config."""
    args = options.parse_args_and_arch(
        options.get_training_parser(), input_args=sentence_args(data, arch="roberta", criterion="sentence_prediction")
    )
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(0)
    plain = tasks.setup_task(cfg.task).build_model(cfg.model)
    state = plain.state_dict()
    official = {k: v for k, v in state.items() if "classification_heads" not in k}
    assert any(k.startswith("encoder.lm_head.") for k in official)
    history = [
        {
            "criterion_name": "MaskedLmLoss",
            "optimizer_name": "FairseqAdam",
            "lr_scheduler_state": {"best": None},
            "num_updates": 500000,
        }
    ]
    torch.save(
        {
            "args": argparse.Namespace(**{**vars(args), "task": "masked_lm", "criterion": "masked_lm"}),
            "model": official,
            "extra_state": {},
            "last_optimizer_state": None,
            "optimizer_history": history,
        },
        path,
    )
    return official, plain


def fairseq_validate(data, checkpoint, user_dir, criterion):
    """fairseq-validate's output on the test split of a sentence_prediction checkpoint."""
    from conftest import run, tool

    return run(
        [
            tool("fairseq-validate"), data, *user_dir, "--path", checkpoint,
            "--task", "sentence_prediction",  # fairseq-validate wants both, though it builds them from the checkpoint
            "--criterion", criterion, "--valid-subset", "test", "--cpu", "--max-tokens", "400", "--log-format", "json",
        ]
    ).stdout  # fmt: skip


def json_tail(out, tag):
    """The last JSON record that fairseq logged under ``tag`` in ``out``."""
    return json.loads(out.split(f"| {tag} | ")[-1].splitlines()[0])
