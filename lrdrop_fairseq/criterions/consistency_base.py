"""What every LR-Drop criterion shares: the consistency flags, their checks, the record spec,
the weight ramp, the model checks and the logging of the terms (the options' meaning, checks,
ramp and weighted sum are the framework-free core's, :mod:`lrdrop.options`).

``lr_drop`` (translation, summarization) and ``lr_drop_sentence_prediction``
(classification, regression) each mix :class:`ConsistencyCriterionMixin` into the
fairseq criterion they extend; the math is in :mod:`lrdrop.consistency`.
"""

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.logging import metrics
from fairseq.modules.fairseq_dropout import FairseqDropout

from lrdrop import consistency as C
from lrdrop.options import DEFAULTS, HELP, LAYER_TERMS, ConsistencySetup  # noqa: F401  (LAYER_TERMS: the criteria import it here)
from lrdrop.records import ATTN_TYPES, HIDDEN_SITES

from ..guards import LRDropConfigError, refuse_unconnected_torchrun_ranks, refuse_unrecordable_layers

logger = logging.getLogger(__name__)

HEALTH_COUNT = "lrdrop_health"  # logging_output key: 1 per training forward that computed the health figures


@dataclass
class ConsistencyConfig(FairseqDataclass):
    """The flags of the layer-wise terms, identical in every LR-Drop criterion."""

    hidden_weight: Optional[float] = field(default=DEFAULTS["hidden_weight"], metadata={"help": HELP["hidden_weight"]})
    attn_weight: float = field(default=DEFAULTS["attn_weight"], metadata={"help": HELP["attn_weight"]})
    hidden_loss: ChoiceEnum(C.HIDDEN_LOSSES) = field(
        default=DEFAULTS["hidden_loss"], metadata={"help": HELP["hidden_loss"]}
    )
    hidden_site: ChoiceEnum(HIDDEN_SITES) = field(
        default=DEFAULTS["hidden_site"], metadata={"help": HELP["hidden_site"]}
    )
    layer_reduction: ChoiceEnum(C.LAYER_REDUCTIONS) = field(
        default=DEFAULTS["layer_reduction"], metadata={"help": HELP["layer_reduction"]}
    )
    attn_loss: ChoiceEnum(C.ATTN_LOSSES) = field(default=DEFAULTS["attn_loss"], metadata={"help": HELP["attn_loss"]})
    attn_types: str = field(default=DEFAULTS["attn_types"], metadata={"help": HELP["attn_types"]})
    consistency_layers: str = field(
        default=DEFAULTS["consistency_layers"], metadata={"help": HELP["consistency_layers"]}
    )
    attn_small_map: int = field(default=DEFAULTS["attn_small_map"], metadata={"help": HELP["attn_small_map"]})
    attn_map_block: int = field(default=DEFAULTS["attn_map_block"], metadata={"help": HELP["attn_map_block"]})
    attn_recompute_in_backward: bool = field(
        default=DEFAULTS["attn_recompute_in_backward"], metadata={"help": HELP["attn_recompute_in_backward"]}
    )
    consistency_warmup_updates: int = field(
        default=DEFAULTS["consistency_warmup_updates"], metadata={"help": HELP["consistency_warmup_updates"]}
    )


# the flags above, as setup_consistency's keyword arguments
CONSISTENCY_FIELDS = tuple(f for f in ConsistencyConfig.__dataclass_fields__ if f != "_name")
assert set(CONSISTENCY_FIELDS) == set(DEFAULTS), "the fairseq flags and the core's options differ"


class ConsistencyCriterionMixin(ConsistencySetup):
    """Mix in before a fairseq criterion; call :meth:`setup_consistency` from ``__init__``.

    Subclasses set :attr:`ARCH_HINT`: which ``_lrdrop`` architectures to use.
    """

    ARCH_HINT = ""

    def setup_consistency(self, output_weights: Dict[str, Tuple[str, float]], **options):
        """Check the flags (LRDropConfigError naming the flag) and keep them (:mod:`lrdrop.options`).

        ``output_weights``: output-consistency term -> (its flag, its weight), e.g.
        ``{"kl_loss": ("--kl-weight", 5.0)}``.
        """
        refuse_unconnected_torchrun_ranks()
        super().setup_consistency(output_weights, **options)
        self._model_checked = False
        self.last_health: Dict[str, torch.Tensor] = {}

    def current_weights(self, model) -> Dict[str, float]:
        return self.weights_at(getattr(model, "lrdrop_num_updates", 0))

    def weighted_sum(self, model, loss, terms: Dict[str, torch.Tensor]):
        """``loss + sum of weight x term`` (:meth:`ConsistencySetup.add_weighted`) at the model's update."""
        return self.add_weighted(loss, terms, getattr(model, "lrdrop_num_updates", 0))

    @staticmethod
    def logged_terms(terms: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The terms for ``logging_output``: sums, which fairseq adds over batches and workers;
        :meth:`reduce_consistency_metrics` divides them by their unit's count."""
        return {name: t.detach() for name, t in terms.items()}

    def logged_health(self, model) -> Dict[str, torch.Tensor]:
        """The last training forward's health figures for ``logging_output`` (``attn_sd_TYPE``,
        ``ffn_rms``/``layer_rms``: :meth:`~lrdrop.options.ConsistencySetup.layer_terms_and_health`),
        with ``lrdrop_health`` 1 to average them by; and the flat-attention warning, logged once."""
        stats, self.last_health = self.last_health, {}
        if not stats:
            return {}
        warning = self.check_health(stats, getattr(model, "lrdrop_num_updates", 0))
        if warning:
            logger.warning("%s: %s", type(self).__name__, warning)
        return {**{name: value.detach() for name, value in stats.items()}, HEALTH_COUNT: 1}

    # ----------------------------------------------------------------- checks
    def check_model(self, model):
        """Once, at the first training forward: the model can record what the flags ask for."""
        if self._model_checked:
            return
        self._model_checked = True
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
                f"({self.ARCH_HINT}: same shapes, no new parameters), or set --hidden-weight 0 --attn-weight 0 "
                f"--consistency-warmup-updates 0 for plain R-Drop with any architecture."
            )
        if self.record_spec is not None:
            refuse_unrecordable_layers(
                model, f"--hidden-weight {self.hidden_weight:g} / --attn-weight {self.attn_weight:g}"
            )
            available = getattr(model, "lrdrop_attn_types", ATTN_TYPES)
            missing = [t for t in self.record_spec.attn_types if t not in available]
            if missing and self.attn_types_named:
                raise LRDropConfigError(
                    f"--attn-types names {', '.join(missing)}, but architecture {arch!r} is encoder-only: it has "
                    f"no decoder self-attention or encoder-decoder attention. Use --attn-types encoder_self (or all)."
                )
            self.record_spec = replace(
                self.record_spec, attn_types=tuple(t for t in self.record_spec.attn_types if t in available)
            )
            try:
                attention = model.lrdrop_attention_modules(self.record_spec)
            except IndexError as e:
                raise LRDropConfigError(str(e)) from None
            extra_keys = [t for t, mods in attention.items()
                          if any(m.bias_k is not None or m.add_zero_attn for m in mods)]  # fmt: skip
            if extra_keys:
                raise LRDropConfigError(
                    f"--attn-weight {self.attn_weight:g}: the {', '.join(extra_keys)} attention of architecture "
                    f"{arch!r} appends keys (add_bias_kv / add_zero_attn) that the attention term cannot rebuild "
                    f"from the recorded projections. Set --attn-weight 0, or --attn-types to the other attention."
                )
        logger.info("%s: %s", type(self).__name__, self.describe())
        any_weight = any(w > 0 for w in self.full_weights().values())
        if any_weight and not any(m.p > 0 for m in model.modules() if isinstance(m, FairseqDropout)):
            logger.warning(
                "%s: every dropout probability is 0, so the two sub-models are identical and "
                "the consistency terms are exactly 0; set --dropout/--attention-dropout > 0 "
                "(or use fairseq's own criterion).",
                type(self).__name__,
            )

    # ----------------------------------------------------------------- metrics
    @staticmethod
    def reduce_consistency_metrics(logging_outputs, per: Dict[str, str]) -> None:
        """Log ``objective`` (bits per ``sample_size``, like fairseq's loss) and each term present
        divided by the logging key ``per[term]`` (``ntokens`` or ``nsentences``)."""
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        if any("objective" in log for log in logging_outputs):
            total = sum(log.get("objective", 0) for log in logging_outputs)
            metrics.log_scalar("objective", total / sample_size / math.log(2), sample_size, round=3)
        for name, denominator_key in per.items():
            if any(name in log for log in logging_outputs):
                total = sum(log.get(name, 0) for log in logging_outputs)
                n = sum(log.get(denominator_key, 0) for log in logging_outputs)
                metrics.log_scalar(name, total / n, n, round=4)
        forwards = sum(log.get(HEALTH_COUNT, 0) for log in logging_outputs)
        if forwards:  # the health figures: means over the training forwards that computed them
            names = {k for log in logging_outputs for k in log if k.startswith("attn_sd_") or k.endswith("_rms")}
            for name in sorted(names):
                metrics.log_scalar(name, sum(log.get(name, 0) for log in logging_outputs) / forwards, forwards, round=3)


double = C.double  # the criteria's name for it (a test user-dir replaces lr_drop's)
