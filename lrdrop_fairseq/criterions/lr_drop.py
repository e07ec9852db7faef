"""The ``lr_drop`` criterion: R-Drop's output KL plus layer-wise consistency.

Per training batch the model runs once on ``[x; x]``; the halves are two
dropout sub-models. Every term is a sum over the batch's sentences; fairseq
divides the loss by ``sample_size`` (the target tokens of one copy, or its
sentences with ``--sentence-avg``)::

    loss = CE_ls(copy1) + CE_ls(copy2)                  sums over target tokens
           + kl_weight * sum (KL(p1||p2) + KL(p2||p1)) / 2
           + hidden_weight * hidden + attn_weight * attn

    hidden = sum over sentences of  T_s x  mean over layers of
             mean over the layer's non-pad tokens of the sentence of  mean_C (h1 - h2)^2
    attn   = sum over sentences of  T_s x  mean over attention types and layers of
             mean over the layer's non-pad query tokens of the sentence of  mean over heads of  SymKL(a1 || a2) / 2

with ``T_s`` the sentence's target tokens. So every weight is "per target token":
``kl_weight`` of the KL at each target token, and the layer weights of the mean per
token of each layer's own side (source for encoder layers and encoder
self-attention, target for the decoder's). A weight means the same in translation
(source and target of similar length) and in summarization (a 1,000-token source, a
60-token summary), and at any depth; ``--update-freq`` and data-parallel ranks give
exactly the terms of one larger batch; ``--sentence-avg`` divides every term by the
sentence count alike, so the weights keep their meaning relative to the cross-entropy.

``--hidden-loss cosine`` uses ``1 - cos(h1, h2)``; ``--hidden-site`` ``ffn`` (the
default, the paper's ``HS(x)``) compares the FFN sublayer's output, ``layer`` the
layer's output; ``--layer-reduction sum``
sums over layers instead of averaging. By default every term is on: the paper's three
terms, with our weights (KL 5, hidden 0.1, attention 0.1; the paper's are not known,
docs/results.md says how these were chosen).

The math lives in :mod:`lrdrop.consistency`; this class wires it to
fairseq. Validation runs the ordinary single-pass label-smoothed loss.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
    label_smoothed_nll_loss,
)

from lrdrop import consistency as C
from lrdrop.options import DEFAULTS, KL_WEIGHT

from ..guards import LRDropConfigError
from .consistency_base import ConsistencyConfig, ConsistencyCriterionMixin, double

__all__ = ["LRDropConfig", "LRDropCriterion", "LRDropConfigError"]

CONSISTENCY_TERMS = ("kl_loss", "hidden_loss", "attn_loss")


@dataclass
class LRDropConfig(LabelSmoothedCrossEntropyCriterionConfig, ConsistencyConfig):
    kl_weight: float = field(
        default=KL_WEIGHT,
        metadata={
            "help": "weight of the symmetric KL between the two sub-models' output "
            "distributions (R-Drop's alpha: 5 for IWSLT, 0.7 for BART on CNN/DM)"
        },
    )


@register_criterion("lr_drop", dataclass=LRDropConfig)
class LRDropCriterion(ConsistencyCriterionMixin, LabelSmoothedCrossEntropyCriterion):
    ARCH_HINT = (
        "e.g. --arch transformer_lrdrop_iwslt_de_en for transformer_iwslt_de_en, bart_lrdrop_large for bart_large"
    )

    def __init__(
        self,
        task,
        sentence_avg,
        label_smoothing,
        kl_weight=KL_WEIGHT,
        hidden_weight=DEFAULTS["hidden_weight"],
        attn_weight=DEFAULTS["attn_weight"],
        hidden_loss=DEFAULTS["hidden_loss"],
        hidden_site=DEFAULTS["hidden_site"],
        layer_reduction=DEFAULTS["layer_reduction"],
        attn_loss=DEFAULTS["attn_loss"],
        attn_types=DEFAULTS["attn_types"],
        consistency_layers=DEFAULTS["consistency_layers"],
        consistency_warmup_updates=DEFAULTS["consistency_warmup_updates"],
        attn_small_map=DEFAULTS["attn_small_map"],
        attn_map_block=DEFAULTS["attn_map_block"],
        attn_recompute_in_backward=DEFAULTS["attn_recompute_in_backward"],
        ignore_prefix_size=0,
        report_accuracy=False,
    ):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        self.setup_consistency(
            {"kl_loss": ("--kl-weight", kl_weight)},
            hidden_weight=hidden_weight,
            attn_weight=attn_weight,
            hidden_loss=hidden_loss,
            hidden_site=hidden_site,
            layer_reduction=layer_reduction,
            attn_loss=attn_loss,
            attn_types=attn_types,
            consistency_layers=consistency_layers,
            consistency_warmup_updates=consistency_warmup_updates,
            attn_small_map=attn_small_map,
            attn_map_block=attn_map_block,
            attn_recompute_in_backward=attn_recompute_in_backward,
        )
        self.kl_weight = self.output_weights["kl_loss"]
        if ignore_prefix_size > 0 and self.record_spec is not None:
            raise LRDropConfigError("--ignore-prefix-size is only supported with --hidden-weight 0 --attn-weight 0")

    # ------------------------------------------------------------------ wiring
    def forward(self, model, sample, reduce=True):
        if not model.training:
            # validation (and any eval-mode call): the ordinary single pass
            return super().forward(model, sample, reduce=reduce)
        ce_loss, nll_loss, terms, net_output, doubled_sample = self.training_terms(model, sample, reduce)
        target = sample["target"]
        sample_size = target.size(0) if self.sentence_avg else sample["ntokens"]
        loss = self.weighted_sum(model, ce_loss, terms)
        logging_output = {
            # per copy, so loss/nll_loss/ppl compare with a single-pass baseline
            "loss": ce_loss.data / 2,
            "nll_loss": nll_loss.data / 2,
            "objective": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": target.size(0),
            "sample_size": sample_size,
        }
        logging_output.update(self.logged_terms(terms))
        logging_output.update(self.logged_health(model))
        if self.report_accuracy:
            n_correct, total = self.compute_accuracy(model, net_output, doubled_sample)
            logging_output["n_correct"] = utils.item(n_correct.data) / 2
            logging_output["total"] = utils.item(total.data) / 2
        return loss, sample_size, logging_output

    def training_terms(self, model, sample, reduce=True):
        """One forward on ``[x; x]``: (label-smoothed CE and NLL of both copies as token sums, the
        unweighted consistency terms, the model's output, the doubled sample)."""
        self.check_model(model)
        net_input = sample["net_input"]
        doubled_input = {k: double(v) for k, v in net_input.items()}
        target = model.get_targets(sample, None)
        doubled_sample = {**sample, "net_input": doubled_input, "target": double(target)}
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
        """Every active consistency term, unweighted, each a sum over the batch in target-token
        units: the output KL over target tokens, the layer terms per sentence as the mean over
        each side's tokens times the sentence's target tokens (:func:`consistency.layer_terms`)."""
        terms = {}
        target_pad = target.eq(self.padding_idx)  # (B, T), True = pad
        if self.kl_weight > 0:
            lp1, lp2 = C.split_halves(lprobs, 0)
            pad1, _ = C.split_halves(doubled_target.eq(self.padding_idx), 0)
            terms["kl_loss"] = C.symmetric_kl_from_log_probs(lp1, lp2, pad1)
        if self.record_spec is not None:
            src_pad = records["encoder_padding_mask"]
            src_pad = C.split_halves(src_pad, 0)[0] if src_pad is not None else None
            pads = {"encoder": src_pad, "decoder": target_pad}
            units = (~target_pad).sum(1)  # each sentence counts as its target tokens, as in its cross-entropy
            layer, self.last_health = self.layer_terms_and_health(records, pads, units)
            terms.update(layer)
        return terms

    # ----------------------------------------------------------------- metrics
    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        cls.reduce_consistency_metrics(logging_outputs, per={name: "ntokens" for name in CONSISTENCY_TERMS})

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
