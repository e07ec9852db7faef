"""What one doubled forward of a Hugging Face model records for the layer terms, and how.

- **Hidden states**: a forward hook on the FFN module :mod:`lrdrop_hf.layout` names (its output,
  before dropout and the residual: the paper's ``HS(x)``), or on the layer.
- **Attention**: read where transformers 5.x computes it. Every family in the table calls
  ``ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation, eager_attention_forward)(
  module, query, key, value, attention_mask, scaling=..., dropout=..., **kwargs)``. While a
  :class:`Recorder` is open, the entry for each implementation the recorded modules use (``sdpa``,
  ``eager``, a flash kernel) is a wrapper that notes, for the recorded modules only, the query and
  key as the kernel gets them (after rotary positions, any LoRA delta on the projections
  included), the mask the model built (padding, causal, sliding window), the scaling and T5's
  ``position_bias``, and then calls the function the user chose, unchanged (for ``eager``, the
  module's own ``eager_attention_forward``). The entry is restored on exit; any other module
  passes straight through.

The maps are then ``softmax(q k^T * scaling + bias + mask)`` in fp32, the eager implementation's
pre-dropout probabilities: small ones built here and kept for the backward, larger ones (over
``--attn_small_map`` entries) handed to the core's blockwise recompute path as the projected
queries and keys (:class:`lrdrop.records.AttentionInputs` with no weights).

A model's mask, as each kernel gets it: a 4-D bool (True = attend: ``sdpa``) or float (added:
``eager``) tensor is read as it is. Without one (``sdpa`` and flash kernels leave it out where
only causality remains) or with a 2-D padding mask (flash kernels), causality is the kernel's
rule: the ``is_causal`` keyword, else the module's ``is_causal``, for more than one query, with
a ``sliding_window`` keyword's window. A flex-attention ``BlockMask`` is refused by name.
"""

import sys
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from lrdrop import consistency as C
from lrdrop.options import LRDropConfigError
from lrdrop.records import AttentionInputs

from .layout import Layout


class Recorder:
    """A context manager: inside it, one doubled forward records the states and the attention the
    record spec selects; :meth:`records` then gives the core's records and padding masks."""

    def __init__(self, layout: Layout, spec):
        self.layout, self.spec = layout, spec
        self.handles = []
        self.states = {"encoder": [], "decoder": []}
        self.attn = {t: [] for t in spec.attn_types if t in layout.attn_types}
        self.sites: Dict[torch.nn.Module, dict] = {}  # attention module -> its record
        self._patched = {}

    def __enter__(self):
        sides = {"encoder": self.layout.encoder_layers, "decoder": self.layout.decoder_layers}
        for side, layers in sides.items():
            if not layers:
                continue
            for i in self.spec.select(len(layers)):
                layer = layers[i]
                if self.spec.hidden:
                    module = self.layout.ffn(layer) if self.spec.hidden_site == "ffn" else layer
                    keep = self.states[side]
                    self.handles.append(module.register_forward_hook(lambda _m, _i, out, k=keep: k.append(_first(out))))
                for t in self.attn:
                    if (t == "encoder_self") != (side == "encoder"):
                        continue
                    module = self.layout.attention(layer, t)
                    rec = {"type": t}
                    self.attn[t].append(rec)
                    self.sites[module] = rec
        if self.sites:
            self._patch()
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []
        self._restore()

    def _patch(self):
        """Wrap the attention interface's entry for each implementation the recorded modules use."""
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        impls = {_implementation(m) for m in self.sites}
        for impl in impls:
            if impl is None or impl.startswith("paged") or impl == "flex_attention":
                raise LRDropConfigError(
                    f"the layer terms read the attention of the eager, sdpa and flash kernels; this model runs "
                    f"{impl!r}. Load it with attn_implementation='sdpa' (or 'eager'), or use R-Drop alone "
                    "(--hidden_weight 0 --attn_weight 0)."
                )
            self._patched[impl] = ALL_ATTENTION_FUNCTIONS._local_mapping.get(impl)  # restored on exit
            inner = ALL_ATTENTION_FUNCTIONS.get(impl)  # None for eager: the module's own function
            ALL_ATTENTION_FUNCTIONS[impl] = _Recording(self.sites, inner, impl)

    def _restore(self):
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        for impl, chosen in self._patched.items():
            if chosen is None:
                del ALL_ATTENTION_FUNCTIONS[impl]
            else:
                ALL_ATTENTION_FUNCTIONS[impl] = chosen
        self._patched = {}

    def records(self, batch, target_pad1):
        """The core's records and padding masks of one copy (:func:`lrdrop.consistency.layer_terms`).
        ``target_pad1``: a seq2seq model's target padding (one copy, True = pad); a causal LM's
        padding is its ``attention_mask``'s."""
        attention_mask = batch.get("attention_mask")
        if attention_mask is None:
            raise LRDropConfigError("the batch has no 'attention_mask': the layer terms need the padding")
        pad1 = ~attention_mask.bool()
        pads = {"decoder": pad1} if self.layout.kind == "causal" else {"encoder": pad1}
        if target_pad1 is not None:
            pads["decoder"] = target_pad1
        records = {f"{side}_states": [s.transpose(0, 1) for s in states] for side, states in self.states.items()}
        records["attn"] = {}
        for t, recs in self.attn.items():
            maps = []
            for r in recs:
                if "q" not in r:
                    raise LRDropConfigError(
                        f"{t} attention was not read in every selected layer: the model did not call transformers' "
                        "attention interface there (GPT-2's reorder_and_upcast_attn does not, for one). Turn that "
                        "off, or use R-Drop alone (--hidden_weight 0 --attn_weight 0)."
                    )
                (b, h, tq, _), tk = r["q"].shape, r["k"].shape[2]
                if h * b * tq * tk <= self.spec.small_map:
                    maps.append(_probs(r))
                else:
                    maps.append(_attention_inputs(r))
            records["attn"][t] = maps
        return records, pads


class _Recording:
    """The attention function while a :class:`Recorder` is open: notes what a recorded module's
    kernel gets, then runs that kernel (``inner``, or the module's own eager function)."""

    def __init__(self, sites, inner, impl):
        self.sites, self.inner, self.impl = sites, inner, impl

    def __call__(self, module, query, key, value, attention_mask, *args, **kwargs):
        rec = self.sites.get(module)
        if rec is not None:
            if "q" in rec:
                raise RuntimeError(f"{type(module).__name__} ran twice in one recorded forward")
            groups = query.shape[1] // key.shape[1]  # grouped key/value heads (Llama, Qwen2, Mistral)
            k = key if groups == 1 else key.repeat_interleave(groups, dim=1)
            scaling = kwargs.get("scaling")
            mask = _score_mask(module, query, key, attention_mask, kwargs, self.impl)
            scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
            rec.update(q=query, k=k, scaling=scaling, bias=kwargs.get("position_bias"), mask=mask)
        inner = self.inner if self.inner is not None else _own_eager(module)
        return inner(module, query, key, value, attention_mask, *args, **kwargs)


def _implementation(module) -> Optional[str]:
    config = getattr(module, "config", None)
    return getattr(config, "_attn_implementation", None)


def _own_eager(module):
    """The eager attention function of ``module``'s own modeling file, which the model passes as the
    interface's default (the global table has no ``eager`` entry)."""
    fn = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
    if fn is None:
        raise LRDropConfigError(f"{type(module).__module__} has no eager_attention_forward to run")
    return fn


def _score_mask(module, query, key, mask, kwargs, impl):
    """The model's mask of one attention call as the scores take it: (N, 1 or H, Tq or 1, Tk), bool
    True = masked, or float added to the scores; None for none (module docstring)."""
    if mask is not None and not torch.is_tensor(mask):
        raise LRDropConfigError(
            f"the layer terms read tensor masks; {type(module).__name__} got a {type(mask).__name__} (flex "
            "attention). Load the model with attn_implementation='sdpa' (or 'eager')."
        )
    if mask is not None and mask.dim() == 4:
        return ~mask if mask.dtype == torch.bool else mask
    masked = None
    if mask is not None:  # a flash kernel's (B, Tk) padding mask, 1 = a real key
        masked = ~mask.bool()[:, None, None, :]
    tq, tk = query.shape[2], key.shape[2]
    causal = kwargs.get("is_causal")
    causal = getattr(module, "is_causal", impl != "eager") if causal is None else causal
    if impl != "eager" and causal and tq > 1:
        qpos = torch.arange(tk - tq, tk, device=query.device)[:, None]  # the last tq positions query
        kpos = torch.arange(tk, device=query.device)[None, :]
        later = kpos > qpos
        window = kwargs.get("sliding_window")
        if window:
            later = later | (kpos <= qpos - window)
        masked = later[None, None] if masked is None else masked | later
    return masked


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _time_major(x):
    """(N, H, T, d) -> (T, N, H, d), the core's record layout, as a view: the record keeps no copy
    of what the model keeps for its own backward."""
    return x.permute(2, 0, 1, 3)


def _attention_inputs(rec):
    """The core's record of one attention call with large maps: the projected queries and keys; the
    term recomputes the maps a block of queries at a time and keeps none."""
    return AttentionInputs(
        query=_time_major(rec["q"]), key=_time_major(rec["k"]), q_weight=None, q_bias=None, k_weight=None,
        k_bias=None, num_heads=rec["q"].shape[1], scaling=rec["scaling"], attn_mask=rec["mask"],
        score_bias=rec["bias"], finite_masks=True,
    )  # fmt: skip


def _probs(rec):
    """(H, 2B, Tq, Tk) fp32 pre-dropout probabilities of one recorded attention call."""
    q, k = C.at_least_fp32(rec["q"]), C.at_least_fp32(rec["k"])
    scores = torch.matmul(q, k.transpose(-1, -2)) * rec["scaling"]
    if rec["bias"] is not None:  # T5: (1 or 2B, H, Tq, Tk) relative position bias
        scores = scores + rec["bias"].to(scores.dtype)
    mask = rec["mask"]
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask.to(scores.dtype)
    return F.softmax(scores, dim=-1).transpose(0, 1)
