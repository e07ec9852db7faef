"""Launch and precision guards: fairseq set-ups that would run but train wrongly, or fail deep
inside fairseq, refused up front with what to do instead. The criterion and the models call them."""

import os

import torch

from lrdrop.options import LRDropConfigError  # noqa: F401  (one error class for every adapter)


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
            raise LRDropConfigError(
                "--bf16: fairseq 0.12 treats --bf16 as TPU training (it implies --tpu) and needs torch_xla, "
                "which is not installed. On GPUs use --fp16 instead; on CPUs leave both out."
            ) from None


RDROP_ONLY = "--hidden-weight 0 --attn-weight 0"


def refuse_unrecordable_layers(model, what: str):
    """Layer terms need every regularized layer to run once, with autograd, in both halves.

    - fairseq's activation checkpointing (``--checkpoint-activations``, ``--offload-activations``)
      runs a layer's first forward under ``torch.no_grad()`` and recomputes it in the backward: the
      states and attention recorded in that forward carry no gradient, and the terms would be
      logged but train nothing.
    - LayerDrop (``--encoder-layerdrop``/``--decoder-layerdrop``) skips layers at random, so the
      recorded layers no longer line up with the layers selected.
    - Quant-noise (``--quant-noise-pq``) rewrites a projection's weight whenever it is called, and
      the recording path calls projections that torch's fused path does not.

    - Fully-sharded data parallel (``--ddp-backend fully_sharded``) may free the parameters the
      attention term reads after the forward.

    ``what``: the flags that asked for the terms, for the message. R-Drop's output KL needs
    neither, so it trains with both.
    """
    if any("FullyShardedDataParallel" in {c.__name__ for c in type(m).__mro__} for m in model.modules()):
        raise LRDropConfigError(
            f"{what} with --ddp-backend fully_sharded: the attention term recomputes large maps from the "
            "projections' parameters after the forward, which FSDP may already have freed, and FSDP's fp32 "
            "flat parameters hide the half-precision compute. Use --ddp-backend c10d (or legacy_ddp), or "
            f"train R-Drop alone with {RDROP_ONLY} (the output KL works with FSDP)."
        )
    if any(hasattr(m, "precheckpoint_forward") for m in model.modules()):
        raise LRDropConfigError(
            f"{what} with --checkpoint-activations (or --offload-activations): fairseq runs each checkpointed "
            "layer's first forward under torch.no_grad() and recomputes it in the backward, so the recorded "
            "hidden states and attention carry no gradient and the layer terms would train nothing. Drop "
            "--checkpoint-activations (to fit memory, lower --max-tokens and raise --update-freq), or keep it "
            f"and train R-Drop alone with {RDROP_ONLY}."
        )
    quant_noise = max(float(getattr(c, "quant_noise_pq", 0) or 0) for c in (getattr(model, "args", None),
                                                                            getattr(model, "cfg", None)))  # fmt: skip
    if quant_noise > 0:
        raise LRDropConfigError(
            f"{what} with --quant-noise-pq {quant_noise:g}: fairseq's quant-noise hook rewrites a projection's weight "
            "in place each time the projection is called, and the attention term records fairseq's explicit "
            "attention path, which calls q_proj where the fused path R-Drop takes does not: the two modes would "
            f"train different weights. Set --quant-noise-pq 0, or train R-Drop alone with {RDROP_ONLY}."
        )
    from fairseq.modules import LayerDropModuleList

    # the model's own layer stacks: RoBERTa's layers are at encoder.sentence_encoder, not encoder
    dropping = [
        f"--{side}-layerdrop"
        for side, stack in model.lrdrop_stacks().items()
        if isinstance(getattr(stack, "layers", None), LayerDropModuleList) and stack.layers.p > 0
    ]
    if dropping:
        raise LRDropConfigError(
            f"{what} with {' / '.join(dropping)}: LayerDrop skips layers at random, so the layers the terms "
            f"compare would not be the layers that ran. Set {' and '.join(f + ' 0' for f in dropping)}, or train "
            f"R-Drop alone with {RDROP_ONLY} (the output KL works with LayerDrop)."
        )
