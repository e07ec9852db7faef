"""The LR-Drop consistency losses as pure tensor functions.

Nothing here knows about fairseq. Every function compares the two halves of a
batch that went through the model as ``[x; x]`` (two dropout sub-models) and
returns a *sum over non-pad positions*, optionally weighted per position. The
output KL is a sum over target tokens, as the cross-entropy is. In
:func:`layer_terms` each sentence's distance on each side is averaged over that
side's own tokens and counted ``units`` times (its target tokens, as its
cross-entropy counts): a weight means the same at any source/target length
ratio, and every term is a sum over sentences, so micro-batches
(``--update-freq``) and data-parallel ranks add up to exactly one larger batch.

All terms are computed in fp32: under ``--fp16``/``--bf16`` the inputs are
upcast here, because the differences being measured are small and
half-precision rounding would swamp them.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .records import QUERY_SIDE, AttentionInputs

HIDDEN_LOSSES = ("mse", "cosine")
ATTN_LOSSES = ("kl", "mse")
LAYER_REDUCTIONS = ("mean", "sum")

# log(0) is -inf, and (0 - 0) * (-inf - -inf) is NaN. Clamping probabilities
# to the smallest normal float32 before the log keeps masked keys (exact zeros
# in both rows) at exactly 0 contribution, and leaves every other value alone
# (a softmax probability below 1e-38 contributes nothing measurable anyway).
_TINY = torch.finfo(torch.float32).tiny


def at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in at least single precision: half precision is upcast, float64 stays (tests take
    finite differences in it)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def double(x):
    """``[x; x]`` along the batch dim (anything else unchanged): one forward through two dropout
    sub-models."""
    return torch.cat([x, x], dim=0) if torch.is_tensor(x) else x


def split_halves(x: Tensor, dim: int = 0):
    """Split a tensor computed on ``[x; x]`` into the two sub-model halves."""
    n = x.size(dim)
    if n % 2 != 0:
        raise ValueError(f"expected a doubled batch along dim {dim}, got size {n}")
    return x.narrow(dim, 0, n // 2), x.narrow(dim, n // 2, n // 2)


def symmetric_kl_from_log_probs(lprobs1: Tensor, lprobs2: Tensor, pad_mask: Optional[Tensor] = None) -> Tensor:
    """``sum over positions of (KL(p1||p2) + KL(p2||p1)) / 2``, last dim is the distribution.

    Uses ``KL(p||q) + KL(q||p) = sum (p - q) * (log p - log q)``: one fused
    pass over log-probabilities the caller already has (for the NLL), instead
    of two softmaxes and two ``kl_div`` calls. ``pad_mask`` (True = ignore)
    has the shape of the inputs without the last dim. The graph keeps only the
    two inputs for the backward (:class:`_SymKLFromLogProbs`).
    """
    per_pos = 0.5 * _SymKLFromLogProbs.apply(lprobs1, lprobs2)
    if pad_mask is not None:
        per_pos = per_pos.masked_fill(pad_mask, 0.0)
    return per_pos.sum()


class _SymKLFromLogProbs(torch.autograd.Function):
    """``sum_v (e^a - e^b) * (a - b)`` over the last dim, in fp32, for log-probabilities ``a``, ``b``.

    Written out, autograd keeps ``e^a``, ``e^b``, ``e^a - e^b`` and ``a - b`` until the backward:
    four fp32 (N x V) tensors, ~625 MiB at 4,096 tokens per copy and a 10k vocabulary. This keeps
    only ``a`` and ``b`` (views of the log-softmax output, which its own backward keeps anyway,
    when the caller passes fp32 log-probabilities as fairseq's criteria do) and recomputes the rest::

        d/da = e^a (a - b) + (e^a - e^b),    d/db = -e^b (a - b) - (e^a - e^b)
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        a32, b32 = at_least_fp32(a), at_least_fp32(b)
        return ((a32.exp() - b32.exp()) * (a32 - b32)).sum(-1)

    @staticmethod
    def backward(ctx, grad):
        a_in, b_in = ctx.saved_tensors
        a, b = at_least_fp32(a_in), at_least_fp32(b_in)
        ea, eb = a.exp(), b.exp()
        diff = a - b
        both = ea - eb
        grad = grad.unsqueeze(-1)
        grad_a = ((ea * diff + both) * grad).to(a_in.dtype) if ctx.needs_input_grad[0] else None
        grad_b = (-(eb * diff + both) * grad).to(b_in.dtype) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def squared_difference(y1: Tensor, y2: Tensor) -> Tensor:
    """``sum (y1 - y2)^2``: R-Drop's consistency for a regression head (STS-B), whose two
    predictions are numbers, not distributions. Summed over sentences and outputs."""
    return (at_least_fp32(y1) - at_least_fp32(y2)).pow(2).sum()


def hidden_consistency(
    h1: Tensor, h2: Tensor, pad_mask: Optional[Tensor] = None, loss: str = "mse", weights: Optional[Tensor] = None
) -> Tensor:
    """Distance between the halves' hidden states of one layer, summed over non-pad tokens.

    ``h1``, ``h2``: (..., C) with the token positions in the leading dims;
    ``pad_mask`` (True = pad) and ``weights`` (each position's factor in the sum; see
    :func:`token_weights`) have the leading shape. ``mse``: squared difference averaged
    over C; ``cosine``: ``1 - cos(h1, h2)``.
    """
    if loss == "mse":
        per_tok = _MeanSquaredDifference.apply(h1, h2)
    elif loss == "cosine":
        per_tok = 1.0 - F.cosine_similarity(at_least_fp32(h1), at_least_fp32(h2), dim=-1, eps=1e-8)
    else:
        raise ValueError(f"unknown hidden loss {loss!r}; choose from {HIDDEN_LOSSES}")
    return _weighted_sum(per_tok, pad_mask, weights)


class _MeanSquaredDifference(torch.autograd.Function):
    """``mean over the last dim of (a - b)^2``, squared and averaged in fp32, keeping only the
    difference ``a - b`` for the backward, in the inputs' precision: written with an upcast
    first, autograd kept an fp32 copy of the difference per layer (twice the bytes under --fp16).
    The subtraction of two nearby values is exact in any precision."""

    @staticmethod
    def forward(ctx, a, b):
        diff = a - b
        ctx.save_for_backward(diff)
        return at_least_fp32(diff).pow(2).mean(-1)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        grad_a = (at_least_fp32(diff) * (2.0 / diff.shape[-1]) * grad.unsqueeze(-1)).to(diff.dtype)
        return grad_a, -grad_a


def _weighted_sum(per_pos: Tensor, pad_mask: Optional[Tensor], weights: Optional[Tensor]) -> Tensor:
    if pad_mask is not None:
        per_pos = per_pos.masked_fill(pad_mask, 0.0)  # before weighting: a NaN at a pad stays out
    if weights is not None:
        per_pos = per_pos * weights
    return per_pos.sum()


def attention_consistency(
    a1: Tensor, a2: Tensor, query_pad_mask: Optional[Tensor] = None, loss: str = "kl", weights: Optional[Tensor] = None
) -> Tensor:
    """Distance between the halves' per-head attention rows of one layer.

    ``a1``, ``a2``: (H, B, Tq, Tk) softmax probabilities over keys (masked
    keys are exact zeros in both). ``query_pad_mask``: (B, Tq), True = pad
    query, whose row is ignored; ``weights``: (B, Tq), each query's factor. ``kl``:
    symmetric KL over keys; ``mse``: squared difference summed over keys (a sum,
    so padded keys, zero in both rows, cannot change it). Averaged over heads,
    summed over queries.
    """
    if loss == "kl":
        per_query = 0.5 * _sym_kl_rows(a1, a2)
    elif loss == "mse":
        per_query = (at_least_fp32(a1) - at_least_fp32(a2)).pow(2).sum(-1)
    else:
        raise ValueError(f"unknown attention loss {loss!r}; choose from {ATTN_LOSSES}")
    per_query = per_query.mean(0)  # average over heads -> (B, Tq)
    return _weighted_sum(per_query, query_pad_mask, weights)


MAP_BLOCK = 2**24  # map entries (64 MB in fp32) computed at once by the attention term
_QUERY_SIDE_FIELDS = ("query", "q_weight", "q_bias", "score_bias")  # sliced by query rows
_KEY_SIDE_FIELDS = ("key", "k_weight", "k_bias")


def recomputed_attention_consistency(
    inputs: AttentionInputs,
    query_pad_mask: Optional[Tensor] = None,
    loss: str = "kl",
    block: Optional[int] = None,
    weights: Optional[Tensor] = None,
    map_block: int = MAP_BLOCK,
    in_backward: bool = False,
) -> Tensor:
    """:func:`attention_consistency` of ``inputs.probs()``, computed a block of queries at a time
    (``block`` queries; default: as many as make ``map_block`` map entries).

    The term is a scalar, so its gradient with respect to its inputs (the query and key
    inputs, the two projections) is computed in the same pass, block by block, and kept
    instead of the maps: the term's memory is one block's maps plus input-sized gradients,
    not every layer's (B*H, Tq, Tk) maps, and nothing is recomputed in the backward. The keys
    are projected once per layer and their gradient sent back through the projection once.

    ``in_backward``: keep nothing but references to the inputs (which the model's own graph
    keeps anyway) and compute the maps again, with that gradient, in the backward: no memory
    until the backward, for a second computation of the projections and the maps
    (``--attn-recompute-in-backward``)."""
    if block is None:
        per_query = inputs.num_heads * inputs.query.shape[1] * inputs.key.shape[0]
        block = max(1, map_block // per_query)
    # self-attention: the key input is the query input, one tensor with one gradient
    shared = inputs.key is inputs.query
    names = [f for f in _QUERY_SIDE_FIELDS + _KEY_SIDE_FIELDS if getattr(inputs, f) is not None]
    names = [f for f in names if not (shared and f == "key")]
    plan = (inputs, query_pad_mask, weights, loss, block, names)
    fn = _DeferredAttentionTerm if in_backward else _AttentionTerm
    return fn.apply(plan, *(getattr(inputs, f) for f in names))


def _term_and_gradients(plan, tensors, needs):
    """The attention term of ``plan`` = (inputs, query_pad_mask, weights, loss, block, names) with
    ``tensors`` in place of the named inputs, and its gradient with respect to those that
    ``needs`` marks, in fp32 ({name: gradient}), a block of queries at a time."""
    inputs, query_pad_mask, weights, loss, block, names = plan
    needs = dict(zip(names, needs))
    with torch.enable_grad():
        # fp32 leaves: under --fp16 this gradient is computed here, before any loss scale
        # exists, and in fp16 it underflows as the halves converge (124% off at a per-query KL
        # of 2e-6); the backward casts it to the inputs' precision once scaled by grad_output
        leaves = {n: at_least_fp32(t.detach()).requires_grad_(needs[n]) for n, t in zip(names, tensors)}
        shared = "key" not in names  # self-attention: the key input is the query input
        rec = dataclasses.replace(inputs, **leaves, **({"key": leaves["query"]} if shared else {}))
        keys = rec.keys()
        key_leaf = keys.detach().requires_grad_(keys.requires_grad)
        wanted = [n for n in names if n in _QUERY_SIDE_FIELDS and needs[n]]
        targets = [leaves[n] for n in wanted] + ([key_leaf] if key_leaf.requires_grad else [])
        grads = [torch.zeros_like(t, dtype=torch.promote_types(t.dtype, torch.float32)) for t in targets]
        dtype = torch.promote_types(inputs.query.dtype, torch.float32)
        total = torch.zeros((), dtype=dtype, device=inputs.query.device)
        for start in range(0, inputs.query.shape[0], block):
            rows = slice(start, start + block)
            qpad = None if query_pad_mask is None else query_pad_mask[:, rows]
            w = None if weights is None else weights[:, rows]
            part = attention_consistency(*split_halves(rec.probs(rows, key_leaf), 1), qpad, loss, w)
            if targets:
                for g, d in zip(grads, torch.autograd.grad(part, targets, allow_unused=True)):
                    if d is not None:
                        g += at_least_fp32(d)
            total += part.detach()
        out = dict(zip(wanted, grads[: len(wanted)]))
        key_side = [n for n in names if n in _KEY_SIDE_FIELDS and needs[n]]
        if shared and needs["query"]:
            key_side.append("query")
        if key_side and key_leaf.requires_grad:  # through the key projection, once
            back = torch.autograd.grad(keys, [leaves[n] for n in key_side], grads[-1])
            for n, d in zip(key_side, back):
                out[n] = out[n] + d if n in out else d
    return total, out


def _scaled(out, names, dtypes, grad_output):
    """The inputs' gradients: ``grad_output`` x each fp32 gradient in ``out``, in its input's dtype."""
    return tuple(None if n not in out else (grad_output * out[n]).to(d) for n, d in zip(names, dtypes))


class _AttentionTerm(torch.autograd.Function):
    """The term and its gradient in the forward; keeps the gradient (input-sized), not the maps."""

    @staticmethod
    def forward(ctx, plan, *tensors):
        names = plan[-1]
        total, out = _term_and_gradients(plan, tensors, ctx.needs_input_grad[1:])
        ctx.names, ctx.dtypes, ctx.kept = names, [t.dtype for t in tensors], [n for n in names if n in out]
        ctx.save_for_backward(*[out[n] for n in ctx.kept])
        return total

    @staticmethod
    def backward(ctx, grad_output):
        out = dict(zip(ctx.kept, ctx.saved_tensors))
        return (None, *_scaled(out, ctx.names, ctx.dtypes, grad_output))


class _DeferredAttentionTerm(torch.autograd.Function):
    """The term in the forward without a graph; the maps again, with the gradient, in the backward."""

    @staticmethod
    def forward(ctx, plan, *tensors):
        ctx.plan = plan
        ctx.save_for_backward(*tensors)
        total, _ = _term_and_gradients(plan, tensors, [False] * len(tensors))
        return total

    @staticmethod
    def backward(ctx, grad_output):
        tensors = ctx.saved_tensors
        _, out = _term_and_gradients(ctx.plan, tensors, ctx.needs_input_grad[1:])
        return (None, *_scaled(out, ctx.plan[-1], [t.dtype for t in tensors], grad_output))


def _sym_kl_rows(p: Tensor, q: Tensor) -> Tensor:
    """``KL(p||q) + KL(q||p)`` over the last dim, for probabilities with exact zeros (masked
    keys): zeros in both rows contribute exactly 0, never NaN."""
    return _SymKLRows.apply(p, q)


class _SymKLRows(torch.autograd.Function):
    """``sum_k (p - q) * (log p - log q)`` with the logs of probabilities clamped at ``_TINY``.

    Written out, autograd would keep the clamped maps, their logs and their difference until the
    backward: four fp32 copies of every (H, B, Tq, Tk) map, for every layer. This keeps only
    ``p`` and ``q`` (views of the softmax output, which the attention's own backward keeps
    anyway) and recomputes the logs in the backward, one layer at a time::

        d/dp = log p - log q + (p - q) / p     (the last part 0 where p is clamped)
    """

    @staticmethod
    def forward(ctx, p, q):
        ctx.save_for_backward(p, q)
        p32, q32 = at_least_fp32(p), at_least_fp32(q)
        return ((p32 - q32) * (p32.clamp_min(_TINY).log() - q32.clamp_min(_TINY).log())).sum(-1)

    @staticmethod
    def backward(ctx, grad):
        p_in, q_in = ctx.saved_tensors
        p, q = at_least_fp32(p_in), at_least_fp32(q_in)
        cp, cq = p.clamp_min(_TINY), q.clamp_min(_TINY)
        log_ratio = cp.log() - cq.log()
        diff = p - q
        grad = grad.unsqueeze(-1)
        grad_p = grad * (log_ratio + torch.where(p >= _TINY, diff / cp, torch.zeros_like(p)))
        grad_q = grad * (torch.where(q >= _TINY, -diff / cq, torch.zeros_like(q)) - log_ratio)
        return grad_p.to(p_in.dtype), grad_q.to(q_in.dtype)


def combine_layers(per_layer: Sequence[Tensor], how: str = "mean") -> Optional[Tensor]:
    """Combine per-layer values: ``mean`` keeps a weight's meaning at any depth; ``sum`` (as
    layer-wise distillation losses do) makes weight ``w`` equal to ``mean`` with ``w x layers``.
    None if empty."""
    if how not in LAYER_REDUCTIONS:
        raise ValueError(f"unknown layer reduction {how!r}; choose from {LAYER_REDUCTIONS}")
    if len(per_layer) == 0:
        return None
    stacked = torch.stack([at_least_fp32(t) for t in per_layer])
    return stacked.mean() if how == "mean" else stacked.sum()


def token_weights(pad_mask: Optional[Tensor], units: Tensor, length: int) -> Tensor:
    """(B, T) factors that turn a side's per-position distances into "each sentence's mean over
    its own non-pad positions, counted ``units[b]`` times": ``units[b] / n_b`` at the ``n_b``
    real positions of sentence ``b``, 0 at pads. ``pad_mask``: (B, T), True = pad (None: no
    padding, ``length`` positions each); ``units``: (B,). An all-pad sentence weighs 0."""
    if pad_mask is None:
        real = torch.ones(units.shape[0], length, dtype=torch.float32, device=units.device)
    else:
        real = (~pad_mask).float()
    return real * (units.float() / real.sum(1).clamp_min(1.0)).unsqueeze(1)


def layer_terms(
    records: dict,
    pad_masks: Dict[str, Optional[Tensor]],
    units: Tensor,
    hidden_loss: str = "mse",
    attn_loss: str = "kl",
    layer_reduction: str = "mean",
    map_block: int = MAP_BLOCK,
    in_backward: bool = False,
) -> Dict[str, Tensor]:
    """The per-layer terms of one doubled forward, ``hidden_loss`` and ``attn_loss``, as sums over sentences.

    Each sentence's distance in a layer is averaged over the non-pad tokens of the layer's own
    side (the source for encoder layers and encoder self-attention, the target for decoder
    layers and the two decoder attentions, whose queries are target tokens) and counted
    ``units[b]`` times: the sentence's weight in the loss's normaliser, its target tokens for
    translation (as its cross-entropy counts them), 1 for sentence classification. So:

    - a weight means the same whatever the source/target length ratio: with 1,000-token sources
      and 60-token summaries an encoder layer counts as much as a decoder layer, as in translation;
    - every term is a sum over sentences, like the cross-entropy, so that K micro-batches
      (``--update-freq``) or K data-parallel ranks give exactly the terms of one batch of them all,
      and the normaliser (``sample_size``: target tokens, or sentences with ``--sentence-avg``)
      divides every term alike.

    On the decoder side of translation this is the plain token sum.

    ``records``: ``encoder_states`` / ``decoder_states`` (lists of (T, 2B, C), either may be
    absent or empty) and ``attn`` ({type: list of :class:`AttentionInputs`, as the ``*_lrdrop``
    models record them, or of (H, 2B, Tq, Tk) probabilities}). ``pad_masks``:
    ``{"encoder": (B, S), "decoder": (B, T)}`` of *one* copy, True = pad (None: no padding).
    ``units``: (B,). Layers combine by ``layer_reduction``; attention types are averaged.
    ``map_block``: map entries the recompute path of large maps computes at once; ``in_backward``:
    it computes them again in the backward instead of keeping their gradient from the forward.
    A term is present only if its records are.
    """
    terms = {}
    weights = {}

    def side(name, length):
        if name not in weights:
            weights[name] = token_weights(pad_masks.get(name), units, length)
        return weights[name]

    per_layer = []
    for name in ("encoder", "decoder"):
        pad = pad_masks.get(name)
        for h in records.get(f"{name}_states") or []:
            # states are time-major: (T, 2B, C)
            w = side(name, h.shape[0]).t()
            per_layer.append(hidden_consistency(*split_halves(h, 1), None if pad is None else pad.t(), hidden_loss, w))
    if per_layer:
        terms["hidden_loss"] = combine_layers(per_layer, layer_reduction)
    per_type = []
    for attn_type, records_of_type in (records.get("attn") or {}).items():
        name = QUERY_SIDE[attn_type]
        per_layer = [
            _attention_term(a, pad_masks.get(name), side, name, attn_loss, map_block, in_backward)
            for a in records_of_type
        ]
        per_type.append(combine_layers(per_layer, layer_reduction))
    if per_type:
        terms["attn_loss"] = torch.stack(per_type).mean()  # every attention type counts alike
    return terms


def _attention_term(
    record: Union[AttentionInputs, Tensor], query_pad: Optional[Tensor], side, name, loss, map_block, in_backward
) -> Tensor:
    """One layer's attention term, weighted per query by ``side(name, n_queries)``: from the
    recorded inputs (the models record these) or from (H, 2B, Tq, Tk) probabilities."""
    if isinstance(record, AttentionInputs):
        w = side(name, record.query.shape[0])
        if record.maps is None:  # large maps: recomputed in blocks
            return recomputed_attention_consistency(
                record, query_pad, loss, weights=w, map_block=map_block, in_backward=in_backward
            )
        return attention_consistency(*split_halves(record.maps, 1), query_pad, loss, w)  # fairseq's explicit path
    return attention_consistency(*split_halves(record, 1), query_pad, loss, side(name, record.shape[2]))
