"""The LR-Drop loss for Hugging Face models: one forward on ``[x; x]``, the core's terms.

Per batch (never mutated) the model runs once on the doubled inputs; the halves are the two
dropout sub-models. As fairseq's ``lr_drop`` (:mod:`lrdrop.consistency` does the math)::

    loss = (CE_ls(copy 1) + CE_ls(copy 2) + kl_weight * sum_tokens SymKL(p1, p2) / 2
            + hidden_weight * hidden + attn_weight * attn) / N

with the Trainer's label smoothing (``LabelSmoother``'s formula, as a sum), ``N`` the target
tokens of one copy (``labels != -100``, shifted by one for a causal language model, as its own
loss shifts them; sentences for a classifier), or the Trainer's
``num_items_in_batch`` under gradient accumulation, and the layer terms summed over sentences,
each sentence's mean over its own tokens on each side counted as its target tokens (once for a
classifier). A regression head (``num_labels == 1``) compares its two predictions by their squared
difference instead of a KL, as R-Drop does for STS-B.
"""

import contextlib
import logging
import weakref
from typing import Optional

import torch
import torch.nn.functional as F

from lrdrop import consistency as C
from lrdrop.options import KL_WEIGHT, SENTENCE_KL_WEIGHT, ConsistencySetup, LRDropConfigError

from .arguments import LRDropArguments
from .layout import Layout, base_of, layout_of
from .recording import Recorder

IGNORE = -100

logger = logging.getLogger(__name__)


class LRDropLoss(ConsistencySetup):
    """Callable: ``loss, logs, outputs = LRDropLoss(args)(model, batch)``; ``logs`` holds every term per
    unit of ``N`` as detached 0-d tensors (read them with ``float`` when needed: each read is a GPU
    sync), ``outputs`` the model's output on the doubled batch."""

    def __init__(self, args: Optional[LRDropArguments] = None, label_smoothing: float = 0.0):
        args = args or LRDropArguments()
        self.kl_weight_given = args.kl_weight  # None: by the head, resolved in __call__
        weight = ("--kl-weight", KL_WEIGHT if args.kl_weight is None else args.kl_weight)
        self.setup_consistency({"kl_loss": weight, "prediction_mse_loss": weight}, **args.options())
        if not 0.0 <= label_smoothing < 1.0:
            raise LRDropConfigError(f"--label_smoothing_factor must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        # by the model object, not its id: a model that is gone (hyperparameter search's trials) takes
        # its layout with it, and a new model at a reused address gets its own
        self._layouts: "weakref.WeakKeyDictionary[torch.nn.Module, Layout]" = weakref.WeakKeyDictionary()
        self._described = False
        self._copies_checked = False

    def layout(self, model) -> Layout:
        key = model
        if key not in self._layouts:
            layout = layout_of(model)
            if self.attn_types_named:
                missing = [t for t in self.record_spec.attn_types if t not in layout.attn_types]
                if missing:
                    raise LRDropConfigError(
                        f"--attn-types names {', '.join(missing)}, but {type(model).__name__} has no such attention"
                    )
            for stack in (layout.encoder_layers, layout.decoder_layers):
                if stack:
                    try:
                        self.record_spec.select(len(stack))
                    except IndexError as e:
                        raise LRDropConfigError(str(e)) from None
            refuse_reentrant_checkpointing(model)
            self._layouts[key] = layout
            logger.info("%s: %s", type(self).__name__,
                        self.describe([t for t in self.record_spec.attn_types if t in layout.attn_types]))  # fmt: skip
        return self._layouts[key]

    def __call__(self, model, batch, num_items_in_batch=None, num_updates: int = 0):
        if "labels" not in batch:
            raise LRDropConfigError("the batch has no 'labels': the LR-Drop loss needs them (padding as -100)")
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        core = base_of(unwrap(model))  # DDP / accelerate / PEFT wrappers: the forward goes through them
        if self.record_spec is not None and _data_parallel(model):
            raise LRDropConfigError(
                "the layer terms cannot run under torch.nn.DataParallel: its replicas run the recording hooks in "
                "threads, on every GPU. Use DistributedDataParallel (torchrun), one GPU, or R-Drop alone "
                "(--hidden_weight 0 --attn_weight 0)."
            )
        # an encoder-decoder with a token head (BART, Marian, T5 for generation) reads its decoder
        # inputs from the labels; its sequence heads (BartForSequenceClassification) from the inputs
        encoder_decoder = bool(getattr(core.config, "is_encoder_decoder", False))
        seq2seq = encoder_decoder and hasattr(core, "prepare_decoder_input_ids_from_labels")
        if encoder_decoder and not seq2seq and self.record_spec is not None:
            raise LRDropConfigError(
                f"{type(core).__name__}: the layer terms read encoder-decoder models with a token head (labels "
                "per target token); this sequence head's decoder reads the source shifted, whose padding the terms "
                "do not have. Use R-Drop alone (--hidden_weight 0 --attn_weight 0), or an encoder classifier."
            )
        causal = is_causal_lm(core)
        if self.kl_weight_given is None:  # by the head: a token head's R-Drop alpha, or a sentence head's
            w = KL_WEIGHT if seq2seq or causal else SENTENCE_KL_WEIGHT
            self.output_weights = {name: w for name in self.output_weights}
        if seq2seq and "decoder_input_ids" not in inputs and "decoder_inputs_embeds" not in inputs:
            inputs["decoder_input_ids"] = core.prepare_decoder_input_ids_from_labels(labels=labels)
        if (seq2seq or causal) and getattr(core.config, "use_cache", False) and "use_cache" not in inputs:
            inputs["use_cache"] = False  # training: no key/value cache for generation
        doubled = {k: C.double(v) for k, v in inputs.items()}
        if self.record_spec is None and not self._described:  # with layer terms, layout() says it
            logger.info("%s: %s", type(self).__name__, self.describe())
            self._described = True
        recorder = None
        if self.record_spec is not None:
            layout = self.layout(core)
            if (layout.kind == "causal") != causal:
                raise LRDropConfigError(
                    f"{type(core).__name__}: the layer terms read {layout.model_type}'s causal language model "
                    f"({layout.model_type}'s *ForCausalLM), not its other heads. Use R-Drop alone "
                    "(--hidden_weight 0 --attn_weight 0)."
                )
            recorder = Recorder(layout, self.record_spec)
        with recorder or contextlib.nullcontext():
            outputs = model(**doubled)
        logits = outputs.logits
        if not self._copies_checked and model.training:
            self._copies_checked = True
            if torch.equal(*C.split_halves(logits.detach(), 0)):  # one read-back, at the first step only
                logger.warning(
                    "%s: the two copies' outputs are identical at the first step: no dropout is active in %s, so "
                    "every consistency term is 0 and trains nothing (TRL's disable_dropout, or a config with every "
                    "dropout at 0?). Give the model dropout (its dropout / attention_dropout, or LoRA's "
                    "lora_dropout), or train without LR-Drop.", type(self).__name__, type(core).__name__,
                )  # fmt: skip
        terms, logs = {}, {}
        if seq2seq or causal:
            target = C.double(labels)
            if causal:  # position t predicts token t + 1, as the model's own loss shifts its labels
                logits, target = logits[:, :-1], target[:, 1:]
            ce, nll, lprobs, target_pad = self._token_cross_entropy(logits, target)
            pad1 = C.split_halves(target_pad, 0)[0]
            if self.output_weights["kl_loss"] > 0:
                terms["kl_loss"] = C.symmetric_kl_from_log_probs(*C.split_halves(lprobs, 0), pad1)
            units = (~pad1).sum(1)
        else:
            if logits.dim() != 2:
                shape = ", ".join(["batch", *map(str, logits.shape[1:])])
                raise LRDropConfigError(
                    f"{type(core).__name__} returns logits of shape ({shape}), a row per token: the "
                    "LR-Drop loss reads encoder-decoder models (BART, Marian, T5: labels per target token), causal "
                    "language models (transformers' table of them) and sequence classifiers and regressors (a row "
                    "per sentence). A token classifier counts its tokens otherwise, so its loss here would be wrong: "
                    "it is not supported."
                )
            ce, nll = self._sentence_loss(core, logits, labels, terms)
            # a sentence counts once, or once per output of a multi-output regression head: the
            # Trainer's num_items_in_batch counts every label, as the head's own mean squared error
            per = labels[0].numel() if problem_type(core.config, labels) == "regression" else 1
            units = torch.full((labels.shape[0],), float(per), device=logits.device)
        n = units.sum()
        if recorder is not None:
            records, pads = recorder.records(batch, pad1 if seq2seq else None)
            layer, health = self.layer_terms_and_health(records, pads, units)
            terms.update(layer)
            logs.update(health)  # attn_sd_TYPE, ffn_rms / layer_rms: the copies agree, or the rows flatten
            warning = self.check_health(health, num_updates)
            if warning:
                logger.warning("%s: %s", type(self).__name__, warning)
        total = self.add_weighted(ce, terms, num_updates)
        denominator = n if num_items_in_batch is None else num_items_in_batch
        if torch.is_tensor(denominator):
            denominator = denominator.to(total.device)
        loss = total / denominator
        # detached tensors, no .item(): a GPU sync per step only where someone reads them (the Trainer's log)
        logs["nll_loss"] = nll.detach() / 2 / n  # per copy, as a single-pass model's
        logs["ce_loss"] = ce.detach() / 2 / n  # the task loss per copy (label-smoothed), as fairseq's loss
        logs.update({name: t.detach() / n for name, t in terms.items()})
        return loss, logs, outputs

    def _token_cross_entropy(self, logits, target):
        """Label-smoothed CE of both copies as a sum over target tokens (``LabelSmoother``'s
        formula), the NLL sum, the fp32 log-probabilities and the padding (True where -100)."""
        lprobs = F.log_softmax(C.at_least_fp32(logits), dim=-1)
        pad = target.eq(IGNORE)
        nll = -lprobs.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1).masked_fill(pad, 0.0)
        eps = self.label_smoothing
        ce = nll.sum()
        if eps > 0:
            smooth = -lprobs.sum(-1).masked_fill(pad, 0.0)
            ce = (1 - eps) * ce + eps / lprobs.shape[-1] * smooth.sum()
        return ce, nll.sum(), lprobs, pad

    def _sentence_loss(self, model, logits, labels, terms):
        """A classifier's (or a regression head's) loss of both copies, summed over sentences."""
        problem = problem_type(model.config, labels)
        if problem == "multi_label_classification":
            raise LRDropConfigError(
                f"{type(model).__name__} with problem_type 'multi_label_classification' (float labels, "
                f"{model.config.num_labels} outputs): its loss is a sigmoid cross-entropy per label, which the LR-Drop "
                "loss does not implement. Single-label classification (integer labels) and regression "
                "(num_labels=1 or problem_type='regression') are supported."
            )
        if problem == "regression":
            preds = C.at_least_fp32(logits).view(logits.shape[0], -1)
            target = C.double(labels.float().view(labels.shape[0], -1))
            loss = F.mse_loss(preds, target, reduction="sum")
            if self.output_weights["prediction_mse_loss"] > 0:
                terms["prediction_mse_loss"] = C.squared_difference(*C.split_halves(preds, 0))
            return loss, loss
        ce, nll, lprobs, _ = self._token_cross_entropy(logits, C.double(labels))
        if self.output_weights["kl_loss"] > 0:
            terms["kl_loss"] = C.symmetric_kl_from_log_probs(*C.split_halves(lprobs, 0))
        return ce, nll


def is_causal_lm(model) -> bool:
    """Whether ``model`` is a causal language model by transformers' own table of them
    (``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``: model type -> class), not by the shape of its output."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type) == type(model).__name__


def refuse_reentrant_checkpointing(model):
    """Reentrant gradient checkpointing (``use_reentrant=True``, PEFT's k-bit preparation's default)
    runs a layer's forward without a graph and again in the backward: the states and projections the
    layer terms recorded in the first forward carry no graph, so the terms' value is right and their
    gradient silently 0. Refused, naming the fix."""
    for m in model.modules():
        fn = getattr(m, "_gradient_checkpointing_func", None)
        if getattr(m, "gradient_checkpointing", False) and getattr(fn, "keywords", {}).get("use_reentrant", False):
            raise LRDropConfigError(
                f"{type(model).__name__} has reentrant gradient checkpointing (use_reentrant=True): the layer terms' "
                "gradient would be lost. Enable it with gradient_checkpointing_kwargs={'use_reentrant': False} "
                "(TrainingArguments or model.gradient_checkpointing_enable; with PEFT, pass the same to "
                "prepare_model_for_kbit_training), or use R-Drop alone (--hidden_weight 0 --attn_weight 0)."
            )


def problem_type(config, labels) -> str:
    """A sequence head's problem as Hugging Face's ``*ForSequenceClassification`` decide it:
    ``config.problem_type`` if set, else ``regression`` for one output, ``single_label_classification``
    for integer labels, ``multi_label_classification`` otherwise."""
    if getattr(config, "problem_type", None):
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    if labels.dtype in (torch.long, torch.int):
        return "single_label_classification"
    return "multi_label_classification"


def _wrappers(model):
    """``model`` and the modules that data-parallel wrappers (``DistributedDataParallel``,
    ``DataParallel``, accelerate's) keep inside it as ``.module``, outermost first."""
    chain = [model]
    while isinstance(getattr(chain[-1], "module", None), torch.nn.Module):
        chain.append(chain[-1].module)
    return chain


def unwrap(model):
    """The model inside its data-parallel wrappers."""
    return _wrappers(model)[-1]


def _data_parallel(model):
    return any(isinstance(m, torch.nn.DataParallel) for m in _wrappers(model))


def lrdrop_loss(model, batch, args: Optional[LRDropArguments] = None, label_smoothing: float = 0.0,
                num_items_in_batch=None, num_updates: int = 0):  # fmt: skip
    """The LR-Drop loss of ``batch`` for a custom loop: ``(loss, logs)``; see :class:`LRDropLoss`
    (build one and call it per step to skip the per-call checks)."""
    loss, logs, _ = LRDropLoss(args, label_smoothing)(model, batch, num_items_in_batch, num_updates)
    return loss, logs
