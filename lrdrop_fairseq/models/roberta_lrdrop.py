"""``roberta_lrdrop``: fairseq's RoBERTa that can record per-layer states for LR-Drop.

Same parameters and state-dict layout as fairseq's ``roberta``, so the official
``roberta.base`` / ``roberta.large`` checkpoints restore into ``roberta_lrdrop_base`` /
``roberta_lrdrop_large`` unchanged (``--restore-file roberta.base/model.pt``, as in
fairseq's GLUE recipe). Encoder-only: the criterion can compare the encoder's layer
states and self-attention, nothing else. See :mod:`.recording`.
"""

from fairseq.models import register_model, register_model_architecture
from fairseq.models.roberta import RobertaModel
from fairseq.models.roberta import model as fairseq_roberta

from .recording import LRDropRecordingMixin, enable_recording


@register_model("roberta_lrdrop")
class RobertaLRDropModel(LRDropRecordingMixin, RobertaModel):
    """fairseq's ``RobertaModel`` exposing its encoder's per-layer states and self-attention."""

    lrdrop_attn_types = ("encoder_self",)

    @classmethod
    def build_model(cls, args, task):
        # RobertaModel.build_model constructs RobertaEncoder itself, so the encoder's own
        # build_encoder factory could only be reached by copying build_model: recording is
        # switched on in the stack it built instead
        model = super().build_model(args, task)
        enable_recording(model.lrdrop_encoder())
        return model

    def lrdrop_encoder(self):
        return self.encoder.sentence_encoder

    def lrdrop_decoder(self):
        return None


# lrdrop arch -> (fairseq's arch, its architecture function); lrdrop_fairseq.export reads this
PLAIN_ARCH = {
    "roberta_lrdrop": ("roberta", fairseq_roberta.base_architecture),
    "roberta_lrdrop_base": ("roberta_base", fairseq_roberta.roberta_base_architecture),
    "roberta_lrdrop_large": ("roberta_large", fairseq_roberta.roberta_large_architecture),
}

for _arch, (_plain, _fn) in PLAIN_ARCH.items():
    register_model_architecture("roberta_lrdrop", _arch)(_fn)
