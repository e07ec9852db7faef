"""``transformer_lrdrop``: fairseq's Transformer that can record per-layer states.

Same parameters, same computation and same checkpoint layout as fairseq's
``transformer``; see :mod:`.recording` for what it adds during training.
"""

from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerModel
from fairseq.models.transformer import transformer_legacy as fairseq_transformer

from .recording import LRDropModelMixin


@register_model("transformer_lrdrop")
class TransformerLRDropModel(LRDropModelMixin, TransformerModel):
    """fairseq's ``TransformerModel`` exposing per-layer states and attention to ``lr_drop``."""


# Each architecture mirrors fairseq's of the same name without "_lrdrop";
# lrdrop-export (lrdrop_fairseq/export.py) relies on that mapping.
PLAIN_ARCH = {
    "transformer_lrdrop": ("transformer", fairseq_transformer.base_architecture),
    "transformer_lrdrop_tiny": ("transformer_tiny", fairseq_transformer.tiny_architecture),
    "transformer_lrdrop_iwslt_de_en": ("transformer_iwslt_de_en", fairseq_transformer.transformer_iwslt_de_en),
    "transformer_lrdrop_wmt_en_de": ("transformer_wmt_en_de", fairseq_transformer.transformer_wmt_en_de),
    "transformer_lrdrop_vaswani_wmt_en_de_big": (
        "transformer_vaswani_wmt_en_de_big",
        fairseq_transformer.transformer_vaswani_wmt_en_de_big,
    ),
}

for _arch, (_plain, _fn) in PLAIN_ARCH.items():
    register_model_architecture("transformer_lrdrop", _arch)(_fn)
