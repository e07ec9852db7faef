"""Build fairseq objects in-process from command-line style arguments."""

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
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser,
        input_args=[
            data,
            "--arch",
            arch,
            "--criterion",
            criterion,
            "--label-smoothing",
            "0.1",
            "--dropout",
            str(dropout),
            "--attention-dropout",
            str(dropout),
            "--cpu",
            "--seed",
            "1",
            "--max-tokens",
            "400",
            *TINY,
            *extra,
        ],
    )
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("train")
    torch.manual_seed(1)
    model = task.build_model(cfg.model)
    crit = task.build_criterion(cfg.criterion)
    return task, model, crit


def first_batch(task, max_tokens=400):
    itr = task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=max_tokens, seed=1, ignore_invalid_inputs=True
    ).next_epoch_itr(shuffle=False)
    return next(iter(itr))
