"""Where each Hugging Face model family keeps what the terms compare, and how its records are taken.

A :class:`Layout` lists a model's encoder and decoder layers and, per layer, its FFN sublayer
(whose output is the paper's ``HS(x)``) and its attention modules. Records come from forward
hooks only, so the model runs its own code, SDPA and its other attention kernels included:

- hidden states: the FFN module's output (before its dropout and the residual), or the layer's;
- attention: the query and key projections' outputs; the pre-dropout probabilities are then
  ``softmax(q k^T * scaling + bias + masks)`` in fp32, with T5's relative position bias taken
  from its attention module's output, the masks built from the batch (key padding from
  ``attention_mask``, the decoder's causal mask).

Families: BART-like (BART, mBART, Marian, Pegasus: ``self_attn``/``encoder_attn`` with
``q_proj``/``k_proj``, FFN ``fc2``), T5 (``SelfAttention``/``EncDecAttention`` with ``q``/``k``,
FFN ``DenseReluDense``), BERT-like encoders (BERT, RoBERTa: ``attention.self`` with
``query``/``key``, FFN ``output.dense``).
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


def layout_of(model: nn.Module) -> Layout:
    """The :class:`Layout` of ``model``; :class:`LRDropConfigError` for a family the terms cannot read."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", type(model).__name__)
    get_encoder = getattr(model, "get_encoder", None)
    encoder = get_encoder() if callable(get_encoder) and config is not None and config.is_encoder_decoder else None
    if encoder is not None and hasattr(encoder, "layers") and hasattr(encoder.layers[0], "fc2"):
        return Layout(
            "bart", list(encoder.layers), list(model.get_decoder().layers), lambda layer: layer.fc2, _bart_attention
        )
    if encoder is not None and hasattr(encoder, "block"):
        decoder = model.get_decoder()
        return Layout("t5", list(encoder.block), list(decoder.block), lambda b: b.layer[-1].DenseReluDense,
                      _t5_attention)  # fmt: skip
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is not None and hasattr(layers[0], "attention") and hasattr(layers[0].attention, "self"):
        if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
            raise LRDropConfigError(
                f"{model_type} with position_embedding_type={config.position_embedding_type!r}: the attention term "
                "recomputes the maps from the query and key projections and cannot add relative position scores. "
                "Use --attn_weight 0 (the hidden and output terms work)."
            )
        if getattr(config, "is_decoder", False):
            raise LRDropConfigError(f"{model_type} as a decoder: the BERT-family support is for encoder classifiers")
        return Layout("bert", list(layers), [], lambda layer: layer.output.dense, _bert_attention)
    raise LRDropConfigError(
        f"the layer terms cannot read {type(model).__name__} ({model_type}): supported are the BART family (BART, "
        "mBART, Marian, Pegasus), T5, and BERT-family encoders (BERT, RoBERTa). R-Drop alone works with any model: "
        "--hidden_weight 0 --attn_weight 0"
    )
