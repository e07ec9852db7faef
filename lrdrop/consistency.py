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

from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .attention import ATTN_LOSSES, MAP_BLOCK, attention_consistency, recomputed_attention_consistency, score_sd_sum
from .halves import at_least_fp32, double, split_halves, weighted_sum
from .records import QUERY_SIDE, AttentionInputs

__all__ = [  # the names adapters and tests read here; the attention term's own are in lrdrop.attention
    "ATTN_LOSSES", "HIDDEN_LOSSES", "LAYER_REDUCTIONS", "MAP_BLOCK", "at_least_fp32", "attention_consistency",
    "combine_layers", "double", "hidden_consistency", "layer_terms", "recomputed_attention_consistency",
    "split_halves", "squared_difference", "symmetric_kl_from_log_probs", "token_weights",
]  # fmt: skip

HIDDEN_LOSSES = ("mse", "cosine", "rel_mse", "rel_var")
# rel_mse: added to the two copies' mean square (per token) so that all-zero states give 0, not NaN
REL_MSE_EPS = 1e-8
LAYER_REDUCTIONS = ("mean", "sum")


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
    :func:`token_weights`) have the leading shape. Per token:

    - ``mse``: ``mean_C (h1 - h2)^2`` (the paper's);
    - ``cosine``: ``1 - cos(h1, h2)``;
    - ``rel_mse``: ``mean_C (h1 - h2)^2 / ((mean_C h1^2 + mean_C h2^2) / 2)``, the squared
      difference relative to the two copies' mean square.

    - ``rel_var``: ``mean_C (h1 - h2)^2`` over the sentence's spread: the mean over its real tokens
      and C of each copy's squared deviation from its own mean over those tokens (the two copies
      averaged). Needs (T, B, C) states (tokens, then sentences), as :func:`layer_terms` passes.

    ``cosine``, ``rel_mse`` and ``rel_var`` are blind to scale: a common factor on both copies'
    states leaves them unchanged, so they cannot be met by shrinking the states, as ``mse`` can.
    ``rel_mse`` can be met by growing what the copies share (a bias both have: the LibreOffice
    screen's FFN outputs grew 8x, docs/results.md section 00); ``rel_var`` is also blind to a part
    that is the same at every token of a sentence, in both copies.
    """
    if loss == "mse":
        per_tok = _MeanSquaredDifference.apply(h1, h2)
    elif loss == "cosine":
        per_tok = 1.0 - F.cosine_similarity(at_least_fp32(h1), at_least_fp32(h2), dim=-1, eps=1e-8)
    elif loss == "rel_mse":
        per_tok = _RelativeSquaredDifference.apply(h1, h2)
    elif loss == "rel_var":
        per_tok = _relative_to_spread(h1, h2, pad_mask)
    else:
        raise ValueError(f"unknown hidden loss {loss!r}; choose from {HIDDEN_LOSSES}")
    return weighted_sum(per_tok, pad_mask, weights)


class _MeanSquaredDifference(torch.autograd.Function):
    """``mean over the last dim of (a - b)^2``, subtracted, squared and averaged in fp32, keeping
    only the fp32 difference for the backward (in fp16 the difference of two states of unlike
    size rounds: 3000 - 0.5 is 3000 there, and their sum overflows past 65504)."""

    @staticmethod
    def forward(ctx, a, b):
        diff = at_least_fp32(a) - at_least_fp32(b)
        ctx.save_for_backward(diff)
        ctx.dtypes = (a.dtype, b.dtype)
        return diff.pow(2).mean(-1)

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved_tensors
        g = diff * (2.0 / diff.shape[-1]) * grad.unsqueeze(-1)
        return g.to(ctx.dtypes[0]), (-g).to(ctx.dtypes[1])


class _RelativeSquaredDifference(torch.autograd.Function):
    """``rel_mse`` per token, ``S / M`` with ``S = mean (a - b)^2`` and ``M = (mean a^2 + mean b^2) / 2
    + eps``, in fp32, keeping the two inputs (as they are) for the backward::

        d/da = (2 (a - b) - (S / M) a) / (C M),   d/db = (-2 (a - b) - (S / M) b) / (C M)
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _relative_parts(at_least_fp32(a), at_least_fp32(b))[0]

    @staticmethod
    def backward(ctx, grad):
        a_in, b_in = ctx.saved_tensors
        a, b = at_least_fp32(a_in), at_least_fp32(b_in)
        d, m = _relative_parts(a, b)
        diff = a - b
        scale = (grad / (m * a.shape[-1])).unsqueeze(-1)
        d = d.unsqueeze(-1)
        return ((2 * diff - d * a) * scale).to(a_in.dtype), ((-2 * diff - d * b) * scale).to(b_in.dtype)


def _relative_to_spread(a: Tensor, b: Tensor, pad_mask: Optional[Tensor]) -> Tensor:
    """``rel_var`` per token, (T, B): ``mean_C (a - b)^2`` over the sentence's spread (see
    :func:`hidden_consistency`), fp32; autograd keeps the centred states (two fp32 copies of a
    layer's states, where ``mse`` keeps one difference)."""
    if a.dim() != 3:
        raise ValueError(f"rel_var compares (T, B, C) states (tokens, sentences, channels), got {tuple(a.shape)}")
    a, b = at_least_fp32(a), at_least_fp32(b)
    real = torch.ones(a.shape[:2], dtype=a.dtype, device=a.device) if pad_mask is None else (~pad_mask).to(a.dtype)
    real = real.unsqueeze(-1)  # (T, B, 1)
    n = real.sum(0).clamp_min(1.0)  # (B, 1): each sentence's real tokens

    def deviation(h):
        return (h - (h * real).sum(0) / n) * real

    spread = 0.5 * (deviation(a).pow(2) + deviation(b).pow(2)).mean(-1, keepdim=True).sum(0) / n  # (B, 1)
    return (a - b).pow(2).mean(-1) / (spread.squeeze(-1) + REL_MSE_EPS)


def _relative_parts(a: Tensor, b: Tensor):
    """(``rel_mse`` per token, the copies' mean square + eps) of fp32/fp64 states."""
    m = 0.5 * (a.pow(2).mean(-1) + b.pow(2).mean(-1)) + REL_MSE_EPS
    return (a - b).pow(2).mean(-1) / m, m


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
    stats: Optional[Dict[str, Tensor]] = None,
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

    ``stats``: a dict to fill with the terms' health figures of the first copy (no graph, on the
    device, read nothing back): ``attn_sd_TYPE`` per attention type, the mean score sd in nats
    over the real query rows and heads of each layer, averaged over layers
    (:func:`lrdrop.attention.score_sd_sum`; near 0 the rows are flat); and ``hidden_rms``, the
    root mean square of the recorded states over the real tokens, averaged as squares over layers.
    """
    terms = {}
    weights = {}

    def side(name, length):
        if name not in weights:
            weights[name] = token_weights(pad_masks.get(name), units, length)
        return weights[name]

    per_layer, mean_squares = [], []
    for name in ("encoder", "decoder"):
        pad = pad_masks.get(name)
        for h in records.get(f"{name}_states") or []:
            # states are time-major: (T, 2B, C)
            w = side(name, h.shape[0]).t()
            tpad = None if pad is None else pad.t()
            per_layer.append(hidden_consistency(*split_halves(h, 1), tpad, hidden_loss, w))
            if stats is not None:
                mean_squares.append(mean_square(split_halves(h, 1)[0], tpad))
    if per_layer:
        terms["hidden_loss"] = combine_layers(per_layer, layer_reduction)
    if mean_squares:
        stats["hidden_rms"] = torch.stack(mean_squares).mean().sqrt()
    per_type = []
    for attn_type, records_of_type in (records.get("attn") or {}).items():
        name = QUERY_SIDE[attn_type]
        per_layer, sharp = [], []
        for a in records_of_type:
            term, sd = _attention_term(a, pad_masks.get(name), side, name, attn_loss, map_block, in_backward,
                                       stats is not None)  # fmt: skip
            per_layer.append(term)
            sharp.append(sd)
        per_type.append(combine_layers(per_layer, layer_reduction))
        if stats is not None and sharp:
            stats[f"attn_sd_{attn_type}"] = torch.stack([s[0] / s[1].clamp_min(1) for s in sharp]).mean()
    if per_type:
        terms["attn_loss"] = torch.stack(per_type).mean()  # every attention type counts alike
    return terms


def mean_square(h: Tensor, pad_mask: Optional[Tensor] = None) -> Tensor:
    """The mean of ``h^2`` over the non-pad positions (``pad_mask``: the leading shape, True = pad)
    and the last dim, fp32, no graph."""
    with torch.no_grad():
        per_pos = at_least_fp32(h.detach()).pow(2).mean(-1)
        if pad_mask is None:
            return per_pos.mean()
        real = ~pad_mask
        return per_pos.masked_fill(pad_mask, 0.0).sum() / real.sum().clamp_min(1)


def _attention_term(
    record: Union[AttentionInputs, Tensor], query_pad: Optional[Tensor], side, name, loss, map_block, in_backward,
    sharpness=False,
):  # fmt: skip
    """One layer's attention term, weighted per query by ``side(name, n_queries)``: from the
    recorded inputs (the models record these) or from (H, 2B, Tq, Tk) probabilities; and, if
    ``sharpness``, the first copy's :func:`~lrdrop.attention.score_sd_sum` (else None)."""
    if isinstance(record, AttentionInputs):
        w = side(name, record.query.shape[0])
        if record.maps is None:  # large maps: recomputed in blocks
            out = recomputed_attention_consistency(
                record, query_pad, loss, weights=w, map_block=map_block, in_backward=in_backward, sharpness=sharpness
            )
            return out if sharpness else (out, None)
        maps = record.maps  # fairseq's explicit path
    else:
        maps, w = record, side(name, record.shape[2])
    p1, p2 = split_halves(maps, 1)
    return attention_consistency(p1, p2, query_pad, loss, w), (score_sd_sum(p1, query_pad) if sharpness else None)
