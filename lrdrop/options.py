"""The consistency options every adapter shares: one meaning and one check for each.

An adapter (fairseq's criteria, the Hugging Face trainers) mixes in :class:`ConsistencySetup`,
calls :meth:`~ConsistencySetup.setup_consistency` with the user's values, and gets the checked
weights, the :class:`~lrdrop.records.RecordSpec` its models record by, the weight ramp and the
weighted sum. Messages name the options as command-line flags (``--hidden-weight``).
"""

from typing import Dict, Optional, Sequence, Tuple

from . import consistency as C
from .health import FlatAttentionMonitor
from .records import ATTN_TYPES, HIDDEN_SITES, SMALL_MAP, RecordSpec

# consistency.layer_terms' outputs
LAYER_TERMS = ("hidden_loss", "attn_loss")

# the output KL's weight in translation and summarization (R-Drop's alpha for IWSLT), fairseq's
# lr_drop and LRDropArguments alike (lr_drop_sentence_prediction has its own, by head)
KL_WEIGHT = 5.0
# ... and a sentence head's (classification, or a regression head's squared difference): fairseq's
# lr_drop_sentence_prediction and LRDropArguments for sequence heads (R-Drop's GLUE alpha is 0.1 to 1)
SENTENCE_KL_WEIGHT = 1.0

# the hidden term's weight where none is given, by --hidden-site (ours; the paper's is not known):
# the FFN site's MSE is not scale-invariant (see HELP), the layer site's outputs are normalised
HIDDEN_WEIGHT_BY_SITE = {"ffn": 0.1, "layer": 1.0}

# option -> default, in the order setup_consistency takes them (after the output weights)
DEFAULTS = {
    "hidden_weight": None,  # by --hidden-site: HIDDEN_WEIGHT_BY_SITE
    "attn_weight": 0.1,
    "hidden_loss": "mse",
    "hidden_site": "ffn",
    "layer_reduction": "mean",
    "attn_loss": "kl",
    "attn_types": "all",
    "consistency_layers": "all",
    "consistency_warmup_updates": 0,
    "attn_small_map": SMALL_MAP,
    "attn_map_block": C.MAP_BLOCK,
    "attn_recompute_in_backward": False,
}


# option -> its help, for every adapter's flags (fairseq's dataclass, LRDropArguments)
HELP = {
    "hidden_weight": "weight of the per-layer hidden-state consistency (the paper's alpha; its value is not known; "
    "0 disables it). Default, ours, by --hidden-site: 0.1 at ffn, 1 at layer. At the FFN site the MSE is not "
    "scale-invariant, and at weight 1 the LibreOffice study's model shrank its FFN outputs 6x below R-Drop's and "
    "fell 1 bit of validation nll behind R-Drop; at 0.1 they still shrink about 2.5x, at little cost in nll "
    "(docs/results.md); the layer site's outputs are normalised, and weight 1 is usual there",
    "attn_weight": "weight of the per-layer, per-head attention consistency (the paper's beta; its value is not "
    "known, 0.1 is ours; 0 disables it): at weight 1 the LibreOffice study's models met it by flattening their "
    "encoder-decoder attention to uniform rows and fell below the plain baseline; at 0.1 it formed "
    "(docs/results.md)",
    "hidden_loss": "hidden-state distance per token: mse (squared difference, mean over the hidden dim: the "
    "paper's), cosine (1 - cosine similarity), rel_mse (mse over the two copies' mean square) or rel_var (mse "
    "over the states' spread around their mean over the sentence's tokens). cosine, rel_mse and rel_var are blind "
    "to the states' scale, so they cannot be met by shrinking the states, as mse can; rel_var is also blind to "
    "what is the same at every token (rel_mse was met by growing it: docs/results.md section 00)",
    "hidden_site": "which hidden state of each layer the hidden term compares: ffn (the feed-forward sublayer's "
    "output HS(x) = act(x W1 + b1) W2 + b2, before its dropout and the residual: the paper's) or layer (the "
    "layer's output, after the residual and LayerNorm)",
    "layer_reduction": "how the per-layer hidden and attention terms combine: mean (a weight means the same at any "
    "depth) or sum (weight w = mean with w x layers)",
    "attn_loss": "attention-row distance: kl (symmetric KL over keys), mse (squared difference summed over keys) "
    "or corr (1 - correlation of the two rows' scores over the row's real keys). corr is blind to the scores' "
    "scale, so it cannot be met by flattening the rows, as kl and mse can (lrdrop/attention.py)",
    "attn_types": "attention types to regularize: 'all' (every type the model has) or a comma-separated subset of "
    "encoder_self,decoder_self,encoder_decoder",
    "consistency_layers": "layers whose states and attention are regularized, in encoder and decoder alike: 'all', "
    "'last', or 0-based indices such as '0,2,-1'",
    "consistency_warmup_updates": "raise every consistency weight linearly from 0 over this many updates (0: full "
    "weight from the start)",
    "attn_small_map": "a self-attention module whose maps (heads x 2 x batch x queries x keys) have at most this "
    "many entries takes fairseq's explicit path and keeps its maps (fast; memory grows with the maps); a larger "
    "one stays on torch's fused kernel and the term recomputes its maps in blocks (less memory, more time). 2^22 "
    "was measured on a CPU (docs/benchmarks.md): on a GPU, time both with lrdrop-benchmark. In the Hugging Face "
    "adapter a module with small maps keeps the maps it builds from the projections, a larger one is recomputed "
    "alike",
    "attn_map_block": "map entries the recompute path of large maps computes at once (2^24: 64 MB in fp32)",
    "attn_recompute_in_backward": "the recompute path computes the large maps (see --attn-small-map; 0: every map) "
    "once more in the backward instead of keeping their inputs' gradients from the forward: the attention term "
    "then holds no memory until the backward (R-Drop's activation memory), for more time per update (CPU: "
    "+20-40%, docs/benchmarks.md)",
}
assert set(HELP) == set(DEFAULTS)


class LRDropConfigError(ValueError):
    """An option combination that cannot train as asked; the message names the flag and the fix."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class ConsistencySetup:
    """The checked consistency options of a loss (mix into an adapter's criterion or trainer)."""

    def setup_consistency(self, output_weights: Dict[str, Tuple[str, float]], **options):
        """Check the options (:class:`LRDropConfigError` naming the flag) and keep them.

        ``output_weights``: output-consistency term -> (its flag, its weight), e.g.
        ``{"kl_loss": ("--kl-weight", 5.0)}``; ``options``: any of :data:`DEFAULTS`.
        """
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown consistency options {sorted(unknown)}")
        o = {**DEFAULTS, **options}
        if o["hidden_weight"] is None:  # an unknown site is refused below
            o["hidden_weight"] = HIDDEN_WEIGHT_BY_SITE.get(str(o["hidden_site"]), 0.0)
        for name, value in (
            *output_weights.values(),
            *((flag(n), o[n]) for n in ("hidden_weight", "attn_weight", "consistency_warmup_updates")),
            (flag("attn_small_map"), o["attn_small_map"]),
        ):
            if not value >= 0:  # also catches NaN
                raise LRDropConfigError(f"{name} must be >= 0, got {value}")
        if not o["attn_map_block"] >= 1:
            raise LRDropConfigError(f"--attn-map-block must be >= 1 map entries, got {o['attn_map_block']}")
        for name, choices in (
            ("hidden_loss", C.HIDDEN_LOSSES),
            ("hidden_site", HIDDEN_SITES),
            ("layer_reduction", C.LAYER_REDUCTIONS),
            ("attn_loss", C.ATTN_LOSSES),
        ):
            if str(o[name]) not in choices:
                raise LRDropConfigError(f"{flag(name)} {o[name]!r}: choose from {', '.join(choices)}")
        try:
            layers = parse_layers(o["consistency_layers"])
            types = parse_attn_types(o["attn_types"])
        except ValueError as e:
            raise LRDropConfigError(str(e)) from None
        self.output_weights = {name: float(w) for name, (_flag, w) in output_weights.items()}
        self.output_flags = {name: f for name, (f, _w) in output_weights.items()}
        self.hidden_site = str(o["hidden_site"])
        self.hidden_weight = float(o["hidden_weight"])
        self.attn_weight = float(o["attn_weight"])
        self.hidden_loss = str(o["hidden_loss"])
        self.attn_loss = str(o["attn_loss"])
        self.layer_reduction = str(o["layer_reduction"])
        self.warmup_updates = int(o["consistency_warmup_updates"])
        self.map_block = int(o["attn_map_block"])
        if not isinstance(o["attn_recompute_in_backward"], bool):
            raise LRDropConfigError(
                f"--attn-recompute-in-backward takes true or false, got {o['attn_recompute_in_backward']!r}"
            )
        self.recompute_in_backward = o["attn_recompute_in_backward"]
        self._health = FlatAttentionMonitor(self.warmup_updates)
        self.attn_types_named = str(o["attn_types"]).strip().lower() != "all"
        self.record_spec: Optional[RecordSpec] = None
        if self.hidden_weight > 0 or self.attn_weight > 0:
            self.record_spec = RecordSpec(
                hidden=self.hidden_weight > 0,
                attn_types=types if self.attn_weight > 0 else (),
                layers=layers,
                hidden_site=str(o["hidden_site"]),
                small_map=int(o["attn_small_map"]),
            )

    def describe(self, attn_types: Optional[Sequence[str]] = None) -> str:
        """One line for the start of a training log: every weight as resolved (the hidden weight
        by its site when not given), what each layer term compares, and the ramp. ``attn_types``:
        the attention the model has of those asked for (default: those asked for)."""
        parts, seen = [], set()
        for name, w in self.output_weights.items():
            if self.output_flags[name] not in seen:  # one flag may weigh several heads' terms
                seen.add(self.output_flags[name])
                parts.append(f"{self.output_flags[name]} {w:g}")
        spec = self.record_spec
        types = () if spec is None else spec.attn_types if attn_types is None else tuple(attn_types)
        if self.hidden_weight > 0:
            term = f"{self.hidden_loss} at --hidden-site {self.hidden_site}"
            parts.append(f"--hidden-weight {self.hidden_weight:g} ({term})")
        else:
            parts.append("--hidden-weight 0 (off)")
        if self.attn_weight > 0:
            parts.append(f"--attn-weight {self.attn_weight:g} ({self.attn_loss} over {', '.join(types)})")
        else:
            parts.append("--attn-weight 0 (off)")
        if spec is not None:
            layers = "all" if spec.layers is None else ",".join(map(str, spec.layers))
            parts.append(f"layers {layers} ({self.layer_reduction} over layers)")
        if self.warmup_updates > 0:
            parts.append(f"each weight raised from 0 over {self.warmup_updates} updates")
        return "consistency terms: " + "; ".join(parts)

    def layer_terms_and_health(self, records: dict, pad_masks, units):
        """The layer terms (:func:`lrdrop.consistency.layer_terms`) with these options, and their
        health figures of the first copy: ``attn_sd_TYPE`` (mean score sd, nats) and
        ``ffn_rms`` or ``layer_rms`` (the compared states' RMS, by --hidden-site), 0-d tensors on the
        device; the figures go to the log and to :meth:`check_health`."""
        stats: Dict = {}
        terms = C.layer_terms(records, pad_masks, units, self.hidden_loss, self.attn_loss, self.layer_reduction,
                              self.map_block, self.recompute_in_backward, stats=stats)  # fmt: skip
        if "hidden_rms" in stats:
            stats[f"{self.hidden_site}_rms"] = stats.pop("hidden_rms")
        return terms, stats

    def check_health(self, stats, num_updates: int) -> Optional[str]:
        """The flat-attention warning, once per loss, after the ramp (:class:`lrdrop.health.FlatAttentionMonitor`)."""
        return self._health.observe(stats, num_updates)

    def full_weights(self) -> Dict[str, float]:
        """Every term's weight from its flag (before --consistency-warmup-updates' ramp)."""
        return {**self.output_weights, "hidden_loss": self.hidden_weight, "attn_loss": self.attn_weight}

    def weights_at(self, num_updates: int) -> Dict[str, float]:
        """The weights after ``num_updates`` updates: raised linearly from 0 over
        --consistency-warmup-updates, then the flags'."""
        ramp = 1.0 if self.warmup_updates <= 0 else min(1.0, num_updates / self.warmup_updates)
        return {name: ramp * w for name, w in self.full_weights().items()}

    def add_weighted(self, loss, terms, num_updates: int):
        """``loss + sum of weight x term`` over the active terms. Every term is a sum over the
        batch in the task loss's own units (target tokens, or sentences for classification), so
        one normaliser treats them all alike, and their sums over micro-batches and ranks are
        the terms of the whole update."""
        for name, w in self.weights_at(num_updates).items():
            if w > 0 and name in terms:
                loss = loss + w * terms[name]
        return loss


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
