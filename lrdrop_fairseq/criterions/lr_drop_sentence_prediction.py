"""``lr_drop_sentence_prediction``: LR-Drop for fairseq's ``sentence_prediction`` task.

Classification and regression heads on RoBERTa (``roberta_lrdrop_*``) or BART
(``bart_lrdrop_*`` with ``--add-prev-output-tokens``), as in fairseq's GLUE
recipe. Per training batch the model runs once on ``[x; x]``; with sums over
the batch, normalised by fairseq's ``sample_size`` (sentences x outputs)::

    loss = task(copy1) + task(copy2)                      CE, or MSE with --regression-target
           + kl_weight             * sum (KL(p1||p2) + KL(p2||p1)) / 2    classification
           + prediction_mse_weight * sum (y1 - y2)^2                     regression (R-Drop's STS-B)
           + hidden_weight * hidden + attn_weight * attn

``hidden`` and ``attn`` are ``lr_drop``'s per-layer terms, same flags, summed over
sentences: each sentence's mean over its own non-pad tokens, counted once (a sentence
is this task's unit, as a target token is translation's), so their weights mean what
they mean in ``lr_drop`` whatever the sentence length. RoBERTa
is encoder-only: its terms are the encoder's layer states and self-attention.

Validation runs fairseq's own ``sentence_prediction`` (one pass; GLUE metrics
with ``--report-mcc`` etc.).
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from fairseq.criterions import register_criterion
from fairseq.criterions.sentence_prediction import SentencePredictionConfig, SentencePredictionCriterion

from lrdrop import consistency as C
from lrdrop.options import SENTENCE_KL_WEIGHT

from ..guards import LRDropConfigError
from .consistency_base import CONSISTENCY_FIELDS, LAYER_TERMS, ConsistencyConfig, ConsistencyCriterionMixin, double

OUTPUT_TERMS = ("kl_loss", "prediction_mse_loss")  # logged per sentence
DEFAULT_OUTPUT_WEIGHT = SENTENCE_KL_WEIGHT  # R-Drop's GLUE alpha is 0.1 to 1.0 by task


@dataclass
class LRDropSentencePredictionConfig(SentencePredictionConfig, ConsistencyConfig):
    kl_weight: Optional[float] = field(
        default=None,
        metadata={
            "help": "weight of the symmetric KL between the two sub-models' class distributions "
            f"(R-Drop's alpha; default {DEFAULT_OUTPUT_WEIGHT:g}); a regression head has no distribution: "
            "with --regression-target use --prediction-mse-weight"
        },
    )
    prediction_mse_weight: Optional[float] = field(
        default=None,
        metadata={
            "help": "with --regression-target: weight of the squared difference between the two "
            f"sub-models' predictions (R-Drop's STS-B consistency; default {DEFAULT_OUTPUT_WEIGHT:g})"
        },
    )


@register_criterion("lr_drop_sentence_prediction", dataclass=LRDropSentencePredictionConfig)
class LRDropSentencePredictionCriterion(ConsistencyCriterionMixin, SentencePredictionCriterion):
    ARCH_HINT = "e.g. --arch roberta_lrdrop_base for roberta_base, roberta_lrdrop_large for roberta_large"

    def __init__(self, cfg: LRDropSentencePredictionConfig, task):
        super().__init__(cfg, task)
        if cfg.regression_target:
            if cfg.kl_weight:
                raise LRDropConfigError(
                    f"--kl-weight {cfg.kl_weight:g} with --regression-target: a regression head predicts numbers, "
                    "not a distribution to take a KL of. Use --prediction-mse-weight W (the squared difference "
                    "of the two predictions, R-Drop's STS-B term) and leave --kl-weight out."
                )
            output = {"prediction_mse_loss": ("--prediction-mse-weight", _default(cfg.prediction_mse_weight))}
        else:
            if cfg.prediction_mse_weight:
                raise LRDropConfigError(
                    f"--prediction-mse-weight {cfg.prediction_mse_weight:g} without --regression-target: a "
                    "classification head's outputs are compared with --kl-weight W; leave --prediction-mse-weight out."
                )
            output = {"kl_loss": ("--kl-weight", _default(cfg.kl_weight))}
        self.setup_consistency(output, **{f: getattr(cfg, f) for f in CONSISTENCY_FIELDS})
        self.padding_idx = task.source_dictionary.pad()

    def forward(self, model, sample, reduce=True):
        if not model.training:
            return super().forward(model, sample, reduce=reduce)  # fairseq's own single pass
        task_loss, terms, logits, targets = self.training_terms(model, sample)
        sample_size = targets.numel()
        loss = self.weighted_sum(model, task_loss, terms)
        logging_output = {
            "loss": task_loss.data / 2,  # per copy, so it compares with a sentence_prediction baseline
            "objective": loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": targets.size(0),
            "sample_size": sample_size,
            **self.logged_terms(terms),
            **self.logged_health(model),
        }
        if not self.regression_target:
            doubled_targets = double(targets)
            logging_output["ncorrect"] = (logits.argmax(dim=1) == doubled_targets).sum() / 2  # no GPU sync
        return loss, sample_size, logging_output

    def training_terms(self, model, sample):
        """One forward on ``[x; x]``: (task loss of both copies, the unweighted consistency terms,
        the head's outputs (2B, K), the targets of one copy (B,) or (B, K))."""
        self.check_model(model)
        doubled_input = {k: double(v) for k, v in sample["net_input"].items()}
        extra = {"lrdrop_record": self.record_spec} if self.record_spec is not None else {}
        logits, net_extra = model(
            **doubled_input, features_only=True, classification_head_name=self.classification_head_name, **extra
        )
        targets = model.get_targets(sample, [logits])
        terms: Dict[str, torch.Tensor] = {}
        if self.regression_target:
            preds = logits.float()
            task_loss = F.mse_loss(preds.view(-1), double(targets).view(-1).float(), reduction="sum")
            if self.output_weights["prediction_mse_loss"] > 0:
                terms["prediction_mse_loss"] = C.squared_difference(*C.split_halves(preds, 0))
        else:
            targets = targets.view(-1)
            lprobs = F.log_softmax(logits, dim=-1, dtype=torch.float32)
            task_loss = F.nll_loss(lprobs, double(targets), reduction="sum")
            if self.output_weights["kl_loss"] > 0:
                terms["kl_loss"] = C.symmetric_kl_from_log_probs(*C.split_halves(lprobs, 0))
        if self.record_spec is not None:
            terms.update(self.layer_terms(net_extra["lrdrop"], sample["net_input"]))
        return task_loss, terms, logits, targets

    def layer_terms(self, records: dict, net_input: dict) -> Dict[str, torch.Tensor]:
        src_pad = records["encoder_padding_mask"]
        pads = {"encoder": C.split_halves(src_pad, 0)[0] if src_pad is not None else None}
        if "prev_output_tokens" in net_input:  # BART: the decoder reads the input shifted by one
            pads["decoder"] = net_input["prev_output_tokens"].eq(self.padding_idx)
        src_tokens = net_input["src_tokens"]
        units = torch.ones(src_tokens.shape[0], device=src_tokens.device)  # each sentence counts once
        terms, self.last_health = self.layer_terms_and_health(records, pads, units)
        return terms

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        per = {name: "nsentences" for name in OUTPUT_TERMS + LAYER_TERMS}
        cls.reduce_consistency_metrics(logging_outputs, per=per)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


def _default(weight: Optional[float]) -> float:
    return DEFAULT_OUTPUT_WEIGHT if weight is None else weight
