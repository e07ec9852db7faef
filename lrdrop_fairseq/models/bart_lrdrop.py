"""``bart_lrdrop``: fairseq's BART that can record per-layer states for ``lr_drop``.

Same parameters and state-dict layout as fairseq's ``bart``, so the official
``bart.large`` checkpoint restores into ``bart_lrdrop_large`` unchanged
(``--restore-file bart.large/model.pt --reset-optimizer ...``); see
:mod:`.recording` for what it adds during training.
"""

from fairseq.models import register_model, register_model_architecture
from fairseq.models.bart import BARTModel
from fairseq.models.bart import model as fairseq_bart

from .recording import LRDropModelMixin


@register_model("bart_lrdrop")
class BARTLRDropModel(LRDropModelMixin, BARTModel):
    """fairseq's ``BARTModel`` exposing per-layer states and attention to ``lr_drop``."""


# lrdrop arch -> (fairseq's arch, its architecture function); lrdrop_fairseq.export reads this
PLAIN_ARCH = {
    "bart_lrdrop_base": ("bart_base", fairseq_bart.bart_base_architecture),
    "bart_lrdrop_large": ("bart_large", fairseq_bart.bart_large_architecture),
}

for _arch, (_plain, _fn) in PLAIN_ARCH.items():
    register_model_architecture("bart_lrdrop", _arch)(_fn)
