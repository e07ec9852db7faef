"""What the ``*_lrdrop`` models add to fairseq's models: per-layer records.

A model with :class:`LRDropRecordingMixin` (encoder-decoders: :class:`LRDropModelMixin`)
has exactly the parameters and the computation of its fairseq parent. Only when
the criterion passes ``lrdrop_record=RecordSpec(...)`` to ``forward`` does it
also return, in the model output's ``extra["lrdrop"]``:

- ``encoder_states`` / ``decoder_states`` (none for an encoder-only model such as
  RoBERTa): per selected layer, (T, B, C), with
  ``RecordSpec.hidden_site``: ``layer``, the layer's output before any final
  layer norm (fairseq's ``encoder_states`` / ``inner_states`` without the
  embedding output); ``ffn``, the feed-forward sublayer's output
  ``act(x W1 + b1) W2 + b2`` before its dropout and the residual;
- ``encoder_padding_mask`` (B, S), True at pad positions (the decoder's pad
  positions are the target's, which the criterion has);
- ``attn[type]`` for the requested ``type`` of :data:`ATTN_TYPES` (an encoder-only
  model has ``encoder_self`` only): per selected layer, what its attention
  module saw (:class:`~lrdrop.records.AttentionInputs`), whose
  ``probs()`` are the per-head probabilities (H, B, T_query, T_key), fp32, after
  the softmax and *before* attention dropout. Padded keys and the causal upper
  triangle are exact zeros; padded *query* rows are not, so consumers must
  mask them.

The model's computation is fairseq's: a module with large maps runs exactly
fairseq's forward (torch's fused attention included) and recording only keeps
references; one with small maps takes fairseq's explicit attention path, whose
per-head maps come for free.
"""

import contextlib
from typing import Dict, List, Optional, Tuple

import torch
from fairseq.modules.multihead_attention import MultiheadAttention
from torch import Tensor

from lrdrop.records import ATTN_TYPES, SMALL_MAP, AttentionInputs, RecordSpec

from ..guards import check_precision_flags


class RecordingMultiheadAttention(MultiheadAttention):
    """fairseq's attention that can record what it saw in one forward, for the attention term.

    Recording keeps references to the inputs, projection weights and masks
    (:class:`~lrdrop.records.AttentionInputs`). A self-attention module with large maps
    (more than :data:`~lrdrop.records.SMALL_MAP` entries) computes its output exactly as
    fairseq does, torch's fused kernel included, and the term recomputes the pre-dropout
    probabilities in blocks; one with small maps, and encoder-decoder attention at any size
    (fairseq always takes its explicit path there, ``static_kv``), takes fairseq's explicit path,
    whose per-head maps come for free, and records them. Adds no parameters and no ``__init__`` state (the flags are
    class-level defaults), so a built ``MultiheadAttention`` is turned into one by re-classing
    it (:func:`enable_recording`): fairseq's own constructor arguments stay in fairseq's
    ``build_*_attention`` methods.
    """

    record_weights: bool = False
    recorded: Optional[AttentionInputs] = None
    small_map: int = SMALL_MAP  # set from the RecordSpec while recording

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        incremental_state=None,
        need_weights: bool = True,
        static_kv: bool = False,
        attn_mask=None,
        before_softmax: bool = False,
        need_head_weights: bool = False,
    ):
        small_maps = False  # recorded here from the explicit path, instead of recomputed by the term
        if self.record_weights and incremental_state is None and not before_softmax:
            if self.bias_k is not None or self.add_zero_attn:
                raise RuntimeError("the attention term does not support --add-bias-kv / --add-zero-attn")
            key_input = query if self.self_attention else key
            self.recorded = AttentionInputs(
                query=query,
                key=key_input,
                q_weight=self.q_proj.weight,
                q_bias=self.q_proj.bias,
                k_weight=self.k_proj.weight,
                k_bias=self.k_proj.bias,
                num_heads=self.num_heads,
                scaling=self.scaling,
                key_padding_mask=key_padding_mask,
                attn_mask=attn_mask,
            )
            # static_kv (encoder-decoder attention): fairseq takes its explicit path whatever the
            # size, so its maps are there to keep; recomputing them would do the work twice
            small_maps = (
                static_kv or self.num_heads * query.shape[1] * query.shape[0] * key_input.shape[0] <= self.small_map
            )
        if not small_maps:  # fairseq's own forward (with large maps the term recomputes them)
            return super().forward(query, key, value, key_padding_mask, incremental_state, need_weights,
                                   static_kv, attn_mask, before_softmax, need_head_weights)  # fmt: skip
        # small maps: fairseq's explicit path (which skip_embed_dim_check forces) returns them per head,
        # fp32, before dropout, at no extra cost
        forced_explicit = self.skip_embed_dim_check
        self.skip_embed_dim_check = True
        try:
            out, head_weights = super().forward(query, key, value, key_padding_mask, incremental_state, True,
                                                static_kv, attn_mask, False, True)  # fmt: skip
        finally:
            self.skip_embed_dim_check = forced_explicit
        self.recorded.maps = head_weights
        if need_head_weights:
            return out, head_weights
        return out, (head_weights.mean(dim=0) if need_weights else None)


def enable_recording(module: torch.nn.Module) -> torch.nn.Module:
    """Re-class every fairseq ``MultiheadAttention`` inside ``module`` (in place)."""
    for m in module.modules():
        if type(m) is MultiheadAttention:
            m.__class__ = RecordingMultiheadAttention
    return module


class LRDropRecordingMixin:
    """Mix in before a fairseq model whose Transformer stacks the criterion compares.

    ``lrdrop_encoder()`` / ``lrdrop_decoder()`` name those stacks (fairseq
    ``TransformerEncoder``/``TransformerDecoder``; the decoder is None for an
    encoder-only model) and :attr:`lrdrop_attn_types` the attention types it has.
    """

    supports_lrdrop_records = True
    lrdrop_attn_types: Tuple[str, ...] = ATTN_TYPES
    lrdrop_num_updates: int = 0  # read by --consistency-warmup-updates

    def lrdrop_encoder(self):
        return self.encoder

    def lrdrop_decoder(self):
        return self.decoder

    def set_num_updates(self, num_updates):
        super().set_num_updates(num_updates)
        self.lrdrop_num_updates = num_updates

    @classmethod
    def build_model(cls, args, task):
        check_precision_flags(args)
        return super().build_model(args, task)

    def forward(self, *args, lrdrop_record: Optional[RecordSpec] = None, **kwargs):
        if lrdrop_record is None:
            return super().forward(*args, **kwargs)
        if lrdrop_record.hidden and lrdrop_record.hidden_site == "layer":
            kwargs["return_all_hiddens"] = True  # RoBERTa's default is False
        with self._recording(lrdrop_record) as (modules, (encoder_out, ffn_out)):
            net_output = super().forward(*args, **kwargs)
            records = self._collect(lrdrop_record, modules, encoder_out, ffn_out, net_output)
        net_output[1]["lrdrop"] = records
        return net_output

    def lrdrop_stacks(self) -> Dict[str, torch.nn.Module]:
        """{"encoder": the encoder's layer stack, "decoder": the decoder's, where there is one}:
        the modules whose ``layers`` the terms compare."""
        stacks = {"encoder": self.lrdrop_encoder()}
        if self.lrdrop_decoder() is not None:
            stacks["decoder"] = self.lrdrop_decoder()
        return stacks

    def lrdrop_attention_modules(self, spec: RecordSpec) -> Dict[str, List[RecordingMultiheadAttention]]:
        """The attention modules of the selected layers, per attention type."""
        missing = [t for t in spec.attn_types if t not in self.lrdrop_attn_types]
        if missing:
            raise KeyError(f"{type(self).__name__} has no {', '.join(missing)} attention")
        layers = {side: [s.layers[i] for i in spec.select(len(s.layers))] for side, s in self.lrdrop_stacks().items()}
        by_type = {
            "encoder_self": lambda: [layer.self_attn for layer in layers["encoder"]],
            "decoder_self": lambda: [layer.self_attn for layer in layers["decoder"]],
            "encoder_decoder": lambda: [layer.encoder_attn for layer in layers["decoder"]],
        }
        return {t: by_type[t]() for t in spec.attn_types}

    @contextlib.contextmanager
    def _recording(self, spec: RecordSpec):
        modules = self.lrdrop_attention_modules(spec)
        encoder_out: List[dict] = []
        # The encoder's states are not part of fairseq's model output; a
        # forward hook takes them without copying the encoder's forward.
        hooks = [self.lrdrop_encoder().register_forward_hook(lambda _m, _inp, out: encoder_out.append(out))]
        ffn_out: Dict[str, List[Tensor]] = {side: [] for side in self.lrdrop_stacks()}
        if spec.hidden and spec.hidden_site == "ffn":
            # fc2's output is the FFN sublayer's, before its dropout and the residual
            for side, stack in self.lrdrop_stacks().items():
                for i in spec.select(len(stack.layers)):
                    hooks.append(
                        stack.layers[i].fc2.register_forward_hook(
                            lambda _m, _inp, out, keep=ffn_out[side]: keep.append(out)
                        )
                    )
        for mods in modules.values():
            for m in mods:
                m.record_weights = True
                m.small_map = spec.small_map
        try:
            yield modules, (encoder_out, ffn_out)
        finally:
            for hook in hooks:
                hook.remove()
            for mods in modules.values():
                for m in mods:
                    m.record_weights = False
                    m.recorded = None

    def _collect(self, spec: RecordSpec, modules, encoder_out: List[dict], ffn_out, net_output) -> dict:
        if len(encoder_out) != 1:
            raise RuntimeError(f"expected one encoder call per forward, saw {len(encoder_out)}")
        enc = encoder_out[0]
        records = {
            "encoder_padding_mask": _encoder_padding_mask(enc),
            "attn": {t: [m.recorded for m in mods] for t, mods in modules.items()},
        }
        stacks = self.lrdrop_stacks()
        if spec.hidden and spec.hidden_site == "ffn":
            for side, stack in stacks.items():
                if len(ffn_out[side]) != len(spec.select(len(stack.layers))):
                    raise RuntimeError(f"expected one FFN call per selected {side} layer, saw {len(ffn_out[side])}")
                records[f"{side}_states"] = ffn_out[side]
        elif spec.hidden:
            # fairseq's state lists start with the embedding output: layer i is at 1 + i
            all_states = {"encoder": enc.get("encoder_states") or []}
            if "decoder" in stacks:
                all_states["decoder"] = net_output[1]["inner_states"]
            for side, stack in stacks.items():
                if len(all_states[side]) != len(stack.layers) + 1:
                    raise RuntimeError(f"{side} states were not returned; call the model with return_all_hiddens=True")
                records[f"{side}_states"] = [all_states[side][1 + i] for i in spec.select(len(stack.layers))]
        for t, weights in records["attn"].items():
            if any(w is None for w in weights):
                raise RuntimeError(f"attention type {t!r} was not recorded in every selected layer")
        return records


class LRDropModelMixin(LRDropRecordingMixin):
    """Mix in before a fairseq encoder-decoder (``TransformerModel``, ``BARTModel``): its
    ``build_encoder``/``build_decoder`` factories turn on recording in the stacks they build."""

    @classmethod
    def build_encoder(cls, args, src_dict, embed_tokens):
        return enable_recording(super().build_encoder(args, src_dict, embed_tokens))

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        return enable_recording(super().build_decoder(args, tgt_dict, embed_tokens))


def _encoder_padding_mask(encoder_out: dict) -> Optional[Tensor]:
    masks = encoder_out.get("encoder_padding_mask") or []
    return masks[0] if len(masks) > 0 else None
