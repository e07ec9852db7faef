"""The ``lr_drop`` criterion: R-Drop's output KL plus layer-wise consistency.

Per training batch the model runs once on ``[x; x]``; the halves are two
dropout sub-models. With token sums over non-pad positions, normalised like
fairseq's label-smoothed criterion (by the tokens of one copy)::

    loss = CE_ls(copy1) + CE_ls(copy2)
           + kl_weight     * (KL(p1||p2) + KL(p2||p1)) / 2
           + hidden_weight * mean over layers of  mean_C (h1 - h2)^2
           + attn_weight   * mean over attention types of
                             mean over layers of  mean over heads of  SymKL(a1 || a2) / 2

``--hidden-loss cosine`` uses ``1 - cos(h1, h2)``; ``--hidden-site ffn`` compares
the FFN sublayer's output instead of the layer's; ``--layer-reduction sum``
sums over layers instead of averaging. The hidden-state term is off by default
(``--hidden-weight 0``; docs/results.md says why).

The math lives in :mod:`lrdrop_fairseq.consistency`; this class wires it to
fairseq. Validation runs the ordinary single-pass label-smoothed loss.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
    label_smoothed_nll_loss,
)
from fairseq.dataclass import ChoiceEnum
from fairseq.logging import metrics
from fairseq.modules.fairseq_dropout import FairseqDropout

from .. import consistency as C
from ..guards import LRDropConfigError, refuse_unconnected_torchrun_ranks
from ..models.recording import ATTN_TYPES, HIDDEN_SITES, RecordSpec

logger = logging.getLogger(__name__)

CONSISTENCY_TERMS = ("kl_loss", "hidden_loss", "attn_loss")


@dataclass
class LRDropConfig(LabelSmoothedCrossEntropyCriterionConfig):
    kl_weight: float = field(
        default=5.0,
        metadata={
            "help": "weight of the symmetric KL between the two sub-models' output "
            "distributions (R-Drop's alpha: 5 for IWSLT, 0.7 for BART on CNN/DM)"
        },
    )
    hidden_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of the per-layer hidden-state consistency; off (0) by default: trained to "
            "convergence, the paper's setting (MSE on layer outputs, weight 1) ended at a worse validation "
            "perplexity than R-Drop, the model meeting it by shrinking its LayerNorm gains (docs/results.md)"
        },
    )
    attn_weight: float = field(
        default=1.0,
        metadata={"help": "weight of the per-layer, per-head attention consistency (0 disables it)"},
    )
    hidden_loss: ChoiceEnum(C.HIDDEN_LOSSES) = field(
        default="mse",
        metadata={
            "help": "hidden-state distance: mse (squared difference, mean over the hidden "
            "dim) or cosine (1 - cosine similarity)"
        },
    )
    hidden_site: ChoiceEnum(HIDDEN_SITES) = field(
        default="layer",
        metadata={
            "help": "which hidden state of each layer the hidden term compares: layer (the "
            "layer's output) or ffn (the feed-forward sublayer's output, before its "
            "dropout and the residual)"
        },
    )
    layer_reduction: ChoiceEnum(C.LAYER_REDUCTIONS) = field(
        default="mean",
        metadata={
            "help": "how the per-layer hidden and attention terms combine: mean (a weight "
            "means the same at any depth) or sum (weight w = mean with w x layers)"
        },
    )
    attn_loss: ChoiceEnum(C.ATTN_LOSSES) = field(
        default="kl",
        metadata={
            "help": "attention-row distance: kl (symmetric KL over keys) or mse (squared difference summed over keys)"
        },
    )
    attn_types: str = field(
        default="all",
        metadata={
            "help": "attention types to regularize: 'all' or a comma-separated subset of "
            "encoder_self,decoder_self,encoder_decoder"
        },
    )
    consistency_layers: str = field(
        default="all",
        metadata={
            "help": "layers whose states and attention are regularized, in encoder and "
            "decoder alike: 'all', 'last', or 0-based indices such as '0,2,-1'"
        },
    )
    consistency_warmup_updates: int = field(
        default=0,
        metadata={
            "help": "raise kl/hidden/attn weights linearly from 0 over this many updates "
            "(0: full weight from the start)"
        },
    )


@register_criterion("lr_drop", dataclass=LRDropConfig)
class LRDropCriterion(LabelSmoothedCrossEntropyCriterion):
    def __init__(
        self,
        task,
        sentence_avg,
        label_smoothing,
        kl_weight=5.0,
        hidden_weight=0.0,
        attn_weight=1.0,
        hidden_loss="mse",
        hidden_site="layer",
        layer_reduction="mean",
        attn_loss="kl",
        attn_types="all",
        consistency_layers="all",
        consistency_warmup_updates=0,
        ignore_prefix_size=0,
        report_accuracy=False,
    ):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        refuse_unconnected_torchrun_ranks()
        for flag, value in (
            ("--kl-weight", kl_weight),
            ("--hidden-weight", hidden_weight),
            ("--attn-weight", attn_weight),
            ("--consistency-warmup-updates", consistency_warmup_updates),
        ):
            if not value >= 0:  # also catches NaN
                raise LRDropConfigError(f"{flag} must be >= 0, got {value}")
        if str(hidden_loss) not in C.HIDDEN_LOSSES:
            raise LRDropConfigError(f"--hidden-loss {hidden_loss!r}: choose from {', '.join(C.HIDDEN_LOSSES)}")
        if str(hidden_site) not in HIDDEN_SITES:
            raise LRDropConfigError(f"--hidden-site {hidden_site!r}: choose from {', '.join(HIDDEN_SITES)}")
        if str(layer_reduction) not in C.LAYER_REDUCTIONS:
            raise LRDropConfigError(
                f"--layer-reduction {layer_reduction!r}: choose from {', '.join(C.LAYER_REDUCTIONS)}"
            )
        if str(attn_loss) not in C.ATTN_LOSSES:
            raise LRDropConfigError(f"--attn-loss {attn_loss!r}: choose from {', '.join(C.ATTN_LOSSES)}")
        try:
            layers = parse_layers(consistency_layers)
            types = parse_attn_types(attn_types)
        except ValueError as e:
            raise LRDropConfigError(str(e)) from None
        if ignore_prefix_size > 0 and (hidden_weight > 0 or attn_weight > 0):
            raise LRDropConfigError("--ignore-prefix-size is only supported with --hidden-weight 0 --attn-weight 0")
        self.kl_weight = float(kl_weight)
        self.hidden_weight = float(hidden_weight)
        self.attn_weight = float(attn_weight)
        self.hidden_loss = str(hidden_loss)
        self.attn_loss = str(attn_loss)
        self.layer_reduction = str(layer_reduction)
        self.warmup_updates = int(consistency_warmup_updates)
        self.record_spec: Optional[RecordSpec] = None
        if self.hidden_weight > 0 or self.attn_weight > 0:
            self.record_spec = RecordSpec(
                hidden=self.hidden_weight > 0,
                attn_types=types if self.attn_weight > 0 else (),
                layers=layers,
                hidden_site=str(hidden_site),
            )
        self._model_checked = False

    # ------------------------------------------------------------------ wiring
    def forward(self, model, sample, reduce=True):
        if not model.training:
            # validation (and any eval-mode call): the ordinary single pass
            return super().forward(model, sample, reduce=reduce)
        ce_loss, nll_loss, terms, net_output, doubled_sample = self.training_terms(model, sample, reduce)
        target = sample["target"]
        weights = self.current_weights(model)
        loss = ce_loss
        for name, w in weights.items():
            if w > 0:
                loss = loss + w * terms[name]

        sample_size = target.size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            # per copy, so loss/nll_loss/ppl compare with a single-pass baseline
            "loss": ce_loss.data / 2,
            "nll_loss": nll_loss.data / 2,
            "objective": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": target.size(0),
            "sample_size": sample_size,
        }
        for name in CONSISTENCY_TERMS:
            if name in terms:
                logging_output[name] = terms[name].data
        if self.report_accuracy:
            n_correct, total = self.compute_accuracy(model, net_output, doubled_sample)
            logging_output["n_correct"] = utils.item(n_correct.data) / 2
            logging_output["total"] = utils.item(total.data) / 2
        return loss, sample_size, logging_output

    def training_terms(self, model, sample, reduce=True):
        """One forward on ``[x; x]``: (label-smoothed CE and NLL of both copies, the unweighted
        consistency terms, the model's output, the doubled sample). Token sums throughout."""
        if not self._model_checked:
            self._check_model(model)
            self._model_checked = True
        net_input = sample["net_input"]
        doubled_input = {k: _double(v) for k, v in net_input.items()}
        target = model.get_targets(sample, None)
        doubled_sample = {**sample, "net_input": doubled_input, "target": _double(target)}
        if self.record_spec is not None:
            net_output = model(**doubled_input, lrdrop_record=self.record_spec)
        else:
            net_output = model(**doubled_input)
        lprobs, doubled_target = self.get_lprobs_and_target(model, net_output, doubled_sample)
        ce_loss, nll_loss = label_smoothed_nll_loss(
            lprobs, doubled_target, self.eps, ignore_index=self.padding_idx, reduce=reduce
        )
        terms = self.consistency_terms(lprobs, doubled_target, net_output[1].get("lrdrop"), target)
        return ce_loss, nll_loss, terms, net_output, doubled_sample

    def consistency_terms(self, lprobs, doubled_target, records: Optional[dict], target) -> Dict[str, torch.Tensor]:
        """Unweighted token sums of every active consistency term."""
        terms = {}
        target_pad = target.eq(self.padding_idx)  # (B, T), True = pad
        if self.kl_weight > 0:
            lp1, lp2 = C.split_halves(lprobs, 0)
            pad1, _ = C.split_halves(doubled_target.eq(self.padding_idx), 0)
            terms["kl_loss"] = C.symmetric_kl_from_log_probs(lp1, lp2, pad1)
        if self.record_spec is not None:
            src_pad = records["encoder_padding_mask"]
            src_pad = C.split_halves(src_pad, 0)[0] if src_pad is not None else None
            if self.hidden_weight > 0:
                per_layer = [
                    C.hidden_consistency(*C.split_halves(h, 1), _time_major(src_pad), self.hidden_loss)
                    for h in records["encoder_states"]
                ] + [
                    C.hidden_consistency(*C.split_halves(h, 1), target_pad.t(), self.hidden_loss)
                    for h in records["decoder_states"]
                ]
                terms["hidden_loss"] = C.combine_layers(per_layer, self.layer_reduction)
            if self.attn_weight > 0:
                query_pad = {"encoder_self": src_pad, "decoder_self": target_pad, "encoder_decoder": target_pad}
                per_type = [
                    C.combine_layers(
                        [C.attention_consistency(*C.split_halves(a, 1), query_pad[t], self.attn_loss) for a in weights],
                        self.layer_reduction,
                    )
                    for t, weights in records["attn"].items()
                ]
                terms["attn_loss"] = C.mean_over_layers(per_type)
        self._check_finite(terms)
        return terms

    def current_weights(self, model) -> Dict[str, float]:
        ramp = 1.0
        if self.warmup_updates > 0:
            ramp = min(1.0, getattr(model, "lrdrop_num_updates", 0) / self.warmup_updates)
        return {
            "kl_loss": ramp * self.kl_weight,
            "hidden_loss": ramp * self.hidden_weight,
            "attn_loss": ramp * self.attn_weight,
        }

    # ----------------------------------------------------------------- checks
    def _check_model(self, model):
        arch = getattr(getattr(model, "args", None), "arch", None) or type(model).__name__
        needs_records = self.record_spec is not None or self.warmup_updates > 0
        if needs_records and not getattr(model, "supports_lrdrop_records", False):
            what = (
                "--consistency-warmup-updates"
                if self.record_spec is None
                else f"--hidden-weight {self.hidden_weight:g} / --attn-weight {self.attn_weight:g}"
            )
            raise LRDropConfigError(
                f"{what} needs a model that exposes per-layer states and attention, and "
                f"architecture {arch!r} does not. Use the matching '_lrdrop' architecture "
                f"(e.g. --arch transformer_lrdrop_iwslt_de_en for transformer_iwslt_de_en, bart_lrdrop_large "
                f"for bart_large: same shapes, no new parameters), or set --hidden-weight 0 --attn-weight 0 "
                f"--consistency-warmup-updates 0 for plain R-Drop with any architecture."
            )
        if self.record_spec is not None:
            try:
                model.lrdrop_attention_modules(self.record_spec)
            except IndexError as e:
                raise LRDropConfigError(str(e)) from None
        any_weight = self.kl_weight > 0 or self.hidden_weight > 0 or self.attn_weight > 0
        if any_weight and not any(m.p > 0 for m in model.modules() if isinstance(m, FairseqDropout)):
            logger.warning(
                "lr_drop: every dropout probability is 0, so the two sub-models are identical and "
                "the consistency terms are exactly 0; set --dropout/--attention-dropout > 0 "
                "(or use --criterion label_smoothed_cross_entropy)."
            )

    @staticmethod
    def _check_finite(terms: Dict[str, torch.Tensor]):
        if not terms:
            return
        values = torch.stack([t.detach().float() for t in terms.values()])
        if not bool(torch.isfinite(values).all()):
            bad = {k: float(v) for k, v in zip(terms, values.tolist()) if not math.isfinite(v)}
            raise FloatingPointError(
                f"lr_drop: non-finite consistency term(s) {bad}; the model's outputs or states "
                "overflowed (try a lower --lr, --fp16-init-scale, or --bf16 instead of --fp16)"
            )

    # ----------------------------------------------------------------- metrics
    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        ntokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        if any("objective" in log for log in logging_outputs):
            total = sum(log.get("objective", 0) for log in logging_outputs)
            # in bits, like fairseq's loss: 2 x loss when every weight is 0
            metrics.log_scalar("objective", total / sample_size / math.log(2), sample_size, round=3)
        for name in CONSISTENCY_TERMS:
            if any(name in log for log in logging_outputs):
                total = sum(log.get(name, 0) for log in logging_outputs)
                metrics.log_scalar(name, total / ntokens, ntokens, round=4)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _double(x):
    return torch.cat([x, x], dim=0) if torch.is_tensor(x) else x


def _time_major(mask):
    return mask.t() if mask is not None else None


def parse_layers(spec: str) -> Optional[Tuple[int, ...]]:
    """``all`` -> None, ``last`` -> (-1,), ``0,2,-1`` -> (0, 2, -1). Raises ValueError."""
    s = spec.strip().lower()
    if s == "all":
        return None
    if s == "last":
        return (-1,)
    try:
        layers = tuple(int(x) for x in s.split(",") if x.strip() != "")
    except ValueError:
        layers = ()
    if len(layers) == 0:
        raise ValueError(
            f"--consistency-layers {spec!r}: use 'all', 'last', or comma-separated layer indices "
            "such as '0,2,-1' (0-based; negative counts from the last layer)"
        )
    return layers


def parse_attn_types(spec: str) -> Tuple[str, ...]:
    s = spec.strip().lower()
    if s == "all":
        return ATTN_TYPES
    types = tuple(t.strip() for t in s.split(",") if t.strip())
    unknown = [t for t in types if t not in ATTN_TYPES]
    if unknown or not types:
        raise ValueError(
            f"--attn-types {spec!r}: unknown {unknown or 'empty list'}; use 'all' or a comma-separated "
            f"subset of {', '.join(ATTN_TYPES)}"
        )
    return types
