"""Where each Hugging Face model family keeps what the terms compare, and how its records are taken.

A :class:`Layout` lists a model's encoder and decoder layers and, per layer, its FFN sublayer
(whose output is the paper's ``HS(x)``) and its attention modules. Records come from forward
hooks only, so the model runs its own code, SDPA and its other attention kernels included:

- hidden states: the FFN module's output (before its dropout and the residual), or the layer's;
- attention: the query and key projections' outputs; the pre-dropout probabilities are then
  ``softmax(q k^T * scaling + bias + masks)`` in fp32, with T5's relative position bias taken
  from its attention module's output, the masks built from the batch (key padding from
  ``attention_mask``, the decoder's causal mask).

Families, by ``config.model_type`` (:data:`FAMILIES`; any other model type is refused by name):
BART-like (bart, mbart, marian, pegasus: ``self_attn``/``encoder_attn`` with ``q_proj``/``k_proj``,
FFN ``fc2``), T5 (t5, mt5: ``SelfAttention``/``EncDecAttention`` with ``q``/``k``, FFN
``DenseReluDense``), BERT-like encoders (bert, roberta: ``attention.self`` with ``query``/``key``,
FFN ``output.dense``).
"""

from dataclasses import dataclass
from typing import Callable, List, Optional

from torch import nn

from lrdrop.options import LRDropConfigError


@dataclass
class AttentionSite:
    q: nn.Module  # the query projection (its output: (B, Tq, H*d))
    k: nn.Module  # the key projection
    heads: int
    scaling: float
    bias_module: Optional[nn.Module] = None  # T5: the attention module, whose output[1] is its position bias


@dataclass
class Layout:
    family: str
    encoder_layers: List[nn.Module]
    decoder_layers: List[nn.Module]
    ffn: Callable[[nn.Module], nn.Module]
    attention: Callable[[nn.Module, str], AttentionSite]  # (layer, attention type) -> site

    @property
    def attn_types(self):
        if self.decoder_layers:
            return ("encoder_self", "decoder_self", "encoder_decoder")
        return ("encoder_self",)


def _bart_attention(layer, attn_type):
    m = layer.encoder_attn if attn_type == "encoder_decoder" else layer.self_attn
    return AttentionSite(m.q_proj, m.k_proj, m.num_heads, m.scaling)


def _t5_attention(block, attn_type):
    m = block.layer[1].EncDecAttention if attn_type == "encoder_decoder" else block.layer[0].SelfAttention
    return AttentionSite(m.q, m.k, m.n_heads, getattr(m, "scaling", 1.0), bias_module=m)


def _bert_attention(layer, attn_type):
    m = layer.attention.self
    return AttentionSite(m.query, m.key, m.num_attention_heads, m.scaling)


def _bart_layout(model, encoder):
    return Layout("bart", list(encoder.layers), list(model.get_decoder().layers), lambda layer: layer.fc2,
                  _bart_attention)  # fmt: skip


def _t5_layout(model, encoder):
    return Layout("t5", list(encoder.block), list(model.get_decoder().block), lambda b: b.layer[-1].DenseReluDense,
                  _t5_attention)  # fmt: skip


def _bert_layout(model, _encoder):
    layers = model.base_model.encoder.layer
    return Layout("bert", list(layers), [], lambda layer: layer.output.dense, _bert_attention)


# config.model_type -> (family, its layout, its FFN sublayer: the hidden site ``ffn``, whose output is
# the paper's HS(x), as fairseq's fc2). Only the families named here are read: a model is never
# taken for one of them by the names of its modules (UMT5 has T5's names and other attention
# outputs, FSMT has BART's and time-major states).
FAMILIES = {
    "bart": ("bart", _bart_layout, "fc2"),
    "mbart": ("bart", _bart_layout, "fc2"),
    "marian": ("bart", _bart_layout, "fc2"),
    "pegasus": ("bart", _bart_layout, "fc2"),
    "t5": ("t5", _t5_layout, "DenseReluDense"),
    "mt5": ("t5", _t5_layout, "DenseReluDense"),
    "bert": ("bert", _bert_layout, "output.dense"),
    "roberta": ("bert", _bert_layout, "output.dense"),
}


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
    family, build, _ffn = FAMILIES[model_type]
    if family == "bert" and getattr(config, "is_decoder", False):
        raise LRDropConfigError(f"{model_type} as a decoder: the BERT-family support is for encoder classifiers")
    if family != "bert" and not hasattr(model, "get_decoder"):
        raise LRDropConfigError(f"{type(model).__name__}: the layer terms read {model_type}'s encoder-decoder models")
    return build(model, model.get_encoder() if family != "bert" else None)
