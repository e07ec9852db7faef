"""``LRDropArguments``: the loss's options as a dataclass ``HfArgumentParser`` reads, with the
names, defaults and meanings of fairseq's ``--criterion lr_drop`` flags (:mod:`lrdrop.options`)."""

from dataclasses import dataclass, field

from lrdrop.options import DEFAULTS


@dataclass
class LRDropArguments:
    kl_weight: float = field(
        default=5.0,
        metadata={
            "help": "weight of the symmetric KL between the two sub-models' output distributions (R-Drop's "
            "alpha: 5 for IWSLT, 0.7 for BART on CNN/DM); with a regression head, of the squared difference "
            "of the two predictions"
        },
    )
    hidden_weight: float = field(
        default=DEFAULTS["hidden_weight"],
        metadata={"help": "weight of the per-layer hidden-state consistency (0 disables it)"},
    )
    attn_weight: float = field(
        default=DEFAULTS["attn_weight"],
        metadata={"help": "weight of the per-layer, per-head attention consistency (0 disables it)"},
    )
    hidden_loss: str = field(
        default=DEFAULTS["hidden_loss"],
        metadata={"help": "mse (squared difference, mean over the hidden dim) or cosine (1 - cosine)"},
    )
    hidden_site: str = field(
        default=DEFAULTS["hidden_site"],
        metadata={
            "help": "ffn: the feed-forward sublayer's output before its dropout and the residual (the paper's "
            "HS(x)); layer: each layer's output"
        },
    )
    layer_reduction: str = field(default=DEFAULTS["layer_reduction"], metadata={"help": "mean or sum over layers"})
    attn_loss: str = field(
        default=DEFAULTS["attn_loss"],
        metadata={"help": "kl (symmetric KL over keys) or mse (squared difference summed over keys)"},
    )
    attn_types: str = field(
        default=DEFAULTS["attn_types"],
        metadata={"help": "all, or a comma list of encoder_self, decoder_self, encoder_decoder"},
    )
    consistency_layers: str = field(
        default=DEFAULTS["consistency_layers"],
        metadata={"help": "all, last, or 0-based indices such as 0,2,-1 (encoder and decoder alike)"},
    )
    consistency_warmup_updates: int = field(
        default=DEFAULTS["consistency_warmup_updates"],
        metadata={"help": "raise every consistency weight linearly from 0 over this many updates"},
    )
    attn_small_map: int = field(
        default=DEFAULTS["attn_small_map"],
        metadata={"help": "accepted for parity with fairseq; the HF adapter keeps every map (explicit path)"},
    )
    attn_map_block: int = field(
        default=DEFAULTS["attn_map_block"],
        metadata={"help": "accepted for parity with fairseq; unused by the HF adapter"},
    )

    def options(self) -> dict:
        """The consistency options, for :meth:`lrdrop.options.ConsistencySetup.setup_consistency`."""
        return {name: getattr(self, name) for name in DEFAULTS}
