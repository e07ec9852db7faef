"""Launch and precision guards: fairseq set-ups that would run but train wrongly, or fail deep
inside fairseq, refused up front with what to do instead. The criterion and the models call them."""

import os

import torch


class LRDropConfigError(ValueError):
    """A flag combination that cannot train as asked; the message names the flag and the fix."""


def refuse_unconnected_torchrun_ranks():
    """torchrun sets WORLD_SIZE, but fairseq-train without --distributed-world-size ignores it:
    every process then trains alone and all of them write the same --save-dir. fairseq has
    initialised torch.distributed before it builds the criterion, so this is the place to tell."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise LRDropConfigError(
            f"this process was started by torchrun (WORLD_SIZE={world}) but fairseq was not told to "
            f"train distributed, so {world} independent trainings would overwrite the same --save-dir. "
            f"Launch with scripts/train_distributed.sh --nproc {world} -- <fairseq-train args>, or give "
            f"fairseq --distributed-world-size/--distributed-rank/--distributed-init-method yourself."
        )


def check_precision_flags(args):
    """fairseq 0.12 reads ``--bf16`` as TPU training (options.py sets ``--tpu``),
    and its Trainer then fails deep inside with "'NoneType' object has no
    attribute 'xla_device'" wherever torch_xla is missing. Say so up front."""
    if getattr(args, "bf16", False):
        try:
            import torch_xla  # noqa: F401
        except ImportError:
            raise ValueError(
                "--bf16: fairseq 0.12 treats --bf16 as TPU training (it implies --tpu) and needs torch_xla, "
                "which is not installed. On GPUs use --fp16 instead; on CPUs leave both out."
            ) from None
