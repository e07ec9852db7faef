"""``LRDropArguments``: the loss's options as a dataclass ``HfArgumentParser`` reads, with the
names, defaults, meanings and help of fairseq's ``--criterion lr_drop`` flags (:mod:`lrdrop.options`)."""

from dataclasses import dataclass, field
from typing import Optional

from lrdrop.options import DEFAULTS, HELP, KL_WEIGHT, SENTENCE_KL_WEIGHT


@dataclass
class LRDropArguments:
    kl_weight: Optional[float] = field(
        default=None,
        metadata={
            "help": "weight of the symmetric KL between the two sub-models' output distributions (R-Drop's "
            "alpha: 5 for IWSLT, 0.7 for BART on CNN/DM); with a regression head, of the squared difference "
            f"of the two predictions. Default by the head, as fairseq's criteria: {KL_WEIGHT:g} for a token head "
            f"(translation, summarization: lr_drop's), {SENTENCE_KL_WEIGHT:g} for a sequence classifier or "
            "regressor (lr_drop_sentence_prediction's)"
        },
    )
    hidden_weight: Optional[float] = field(default=DEFAULTS["hidden_weight"], metadata={"help": HELP["hidden_weight"]})
    attn_weight: float = field(default=DEFAULTS["attn_weight"], metadata={"help": HELP["attn_weight"]})
    hidden_loss: str = field(default=DEFAULTS["hidden_loss"], metadata={"help": HELP["hidden_loss"]})
    hidden_site: str = field(default=DEFAULTS["hidden_site"], metadata={"help": HELP["hidden_site"]})
    layer_reduction: str = field(default=DEFAULTS["layer_reduction"], metadata={"help": HELP["layer_reduction"]})
    attn_loss: str = field(default=DEFAULTS["attn_loss"], metadata={"help": HELP["attn_loss"]})
    attn_types: str = field(default=DEFAULTS["attn_types"], metadata={"help": HELP["attn_types"]})
    consistency_layers: str = field(
        default=DEFAULTS["consistency_layers"], metadata={"help": HELP["consistency_layers"]}
    )
    consistency_warmup_updates: int = field(
        default=DEFAULTS["consistency_warmup_updates"], metadata={"help": HELP["consistency_warmup_updates"]}
    )
    attn_small_map: int = field(default=DEFAULTS["attn_small_map"], metadata={"help": HELP["attn_small_map"]})
    attn_map_block: int = field(default=DEFAULTS["attn_map_block"], metadata={"help": HELP["attn_map_block"]})
    attn_recompute_in_backward: bool = field(
        default=DEFAULTS["attn_recompute_in_backward"], metadata={"help": HELP["attn_recompute_in_backward"]}
    )

    def options(self) -> dict:
        """The consistency options, for :meth:`lrdrop.options.ConsistencySetup.setup_consistency`."""
        return {name: getattr(self, name) for name in DEFAULTS}
