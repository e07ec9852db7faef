"""Where each Hugging Face model family keeps what the terms compare.

A :class:`Layout` lists a model's encoder and decoder layers and, per layer, its FFN sublayer
(whose output is the paper's ``HS(x)``) and its attention modules. How the records are taken is
:mod:`lrdrop_hf.recording`'s: the FFN output by a forward hook, the attention where transformers
computes it (its attention interface), so the model runs its own code and the kernel the user
chose.

Families, by ``config.model_type`` (:data:`FAMILIES`; any other model type is refused by name),
each a :class:`Family` of dotted paths (an integer is an index, ``-1`` the last):

=================================  ========  ===========================  ============================
model types                        kind      FFN module (its output)      attention modules
=================================  ========  ===========================  ============================
bart, mbart, marian, pegasus       seq2seq   ``fc2``                      ``self_attn``, ``encoder_attn``
t5, mt5                            seq2seq   ``layer.-1.DenseReluDense``  ``layer.0.SelfAttention``,
                                                                          ``layer.1.EncDecAttention``
bert, roberta                      encoder   ``output.dense``             ``attention.self``
gpt2                               causal    ``mlp.c_proj``               ``attn``
llama, qwen2, mistral              causal    ``mlp.down_proj``            ``self_attn``
=================================  ========  ===========================  ============================

The FFN module is the last of the sublayer, before its dropout and the residual, as fairseq's
``fc2`` (tests/hf/test_hf_defects.py pins it).
"""

from dataclasses import dataclass
from typing import List, Optional

from torch import nn

from lrdrop.options import LRDropConfigError


@dataclass(frozen=True)
class Family:
    kind: str  # seq2seq: encoder-decoder with a token head; encoder: a sequence classifier; causal: a causal LM
    encoder: Optional[str]  # the encoder's layer list, from the base model
    decoder: Optional[str]  # the decoder's (a causal LM's) layer list, from the base model
    ffn: str  # in a layer: the FFN sublayer's last module, whose output is HS(x)
    self_attn: str  # in a layer: the self-attention module (the one the attention interface is given)
    cross_attn: Optional[str] = None  # in a decoder layer: the encoder-decoder attention module


BART = Family("seq2seq", "encoder.layers", "decoder.layers", "fc2", "self_attn", "encoder_attn")
T5 = Family("seq2seq", "encoder.block", "decoder.block", "layer.-1.DenseReluDense", "layer.0.SelfAttention",
            "layer.1.EncDecAttention")  # fmt: skip
BERT = Family("encoder", "encoder.layer", None, "output.dense", "attention.self")
GPT2 = Family("causal", None, "h", "mlp.c_proj", "attn")
LLAMA = Family("causal", None, "layers", "mlp.down_proj", "self_attn")

# config.model_type -> its Family. Only the types named here are read: a model is never taken for
# one of them by the names of its modules (UMT5 has T5's names and other attention outputs, FSMT
# has BART's and time-major states).
FAMILIES = {
    "bart": BART,
    "mbart": BART,
    "marian": BART,
    "pegasus": BART,
    "t5": T5,
    "mt5": T5,
    "bert": BERT,
    "roberta": BERT,
    "gpt2": GPT2,
    "llama": LLAMA,
    "qwen2": LLAMA,
    "mistral": LLAMA,
}


def submodule(module: nn.Module, path: str) -> nn.Module:
    """``module``'s submodule at the dotted ``path``; integer parts index (``-1``: the last)."""
    for part in path.split("."):
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


@dataclass
class Layout:
    model_type: str
    family: Family
    encoder_layers: List[nn.Module]
    decoder_layers: List[nn.Module]

    @property
    def kind(self):
        return self.family.kind

    @property
    def attn_types(self):
        if self.kind == "seq2seq":
            return ("encoder_self", "decoder_self", "encoder_decoder")
        return ("encoder_self",) if self.kind == "encoder" else ("decoder_self",)

    def ffn(self, layer: nn.Module) -> nn.Module:
        return submodule(layer, self.family.ffn)

    def attention(self, layer: nn.Module, attn_type: str) -> nn.Module:
        path = self.family.cross_attn if attn_type == "encoder_decoder" else self.family.self_attn
        return submodule(layer, path)


def base_of(model: nn.Module) -> nn.Module:
    """The Transformers model inside a PEFT wrapper (``PeftModel``), else ``model``."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def layout_of(model: nn.Module) -> Layout:
    """The :class:`Layout` of ``model`` (a PEFT wrapper's base model), by its ``config.model_type``
    in :data:`FAMILIES`; :class:`LRDropConfigError` for any other."""
    model = base_of(model)
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise LRDropConfigError(
            f"the layer terms cannot read {type(model).__name__} (model_type {model_type!r}): they read the model "
            f"types {', '.join(FAMILIES)}. R-Drop alone works with any model: --hidden_weight 0 --attn_weight 0"
        )
    family = FAMILIES[model_type]
    if family.kind == "encoder" and getattr(config, "is_decoder", False):
        raise LRDropConfigError(f"{model_type} as a decoder: the BERT-family support is for encoder classifiers")
    if family.kind == "seq2seq" and not hasattr(model, "get_decoder"):
        raise LRDropConfigError(f"{type(model).__name__}: the layer terms read {model_type}'s encoder-decoder models")
    base = model.base_model
    layers = [list(submodule(base, path)) if path else [] for path in (family.encoder, family.decoder)]
    return Layout(model_type, family, *layers)
