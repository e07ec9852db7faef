"""The attention term's distances between the two copies' per-head rows, its recompute path for
large maps, and the sharpness figure of the rows (the term's health).

Every distance compares, per query, the rows of the two dropout sub-models over the same keys,
averages over heads and sums over queries (weighted per query):

- ``kl``: the symmetric KL of the probabilities, ``sum_k (p - q)(log p - log q)`` / 2;
- ``mse``: the squared difference of the probabilities, summed over keys;
- ``corr``: ``1 - Pearson correlation`` of the two rows' scores over the row's real keys. The
  scores are read from the probabilities (``log p`` is the scores less the row's log-sum-exp, a
  constant per row that the correlation ignores), standardised by the row's own mean and spread
  over its real keys (a masked key, probability 0 in both rows, is left out), and compared as
  ``mean_k (z1 - z2)^2 / 2``. A common factor on both copies' scores leaves it unchanged, so,
  unlike ``kl`` and ``mse``, it cannot be met by shrinking the scores (flattening the rows): only
  by the copies ranking the keys alike. Bounded in [0, 2]; 0 for a row with one real key.

The sharpness figure is the standard deviation of a row's scores over its real keys (nats),
averaged over the first copy's real query rows and heads: ``lrdrop-diagnose``'s score sd, logged
while training (:func:`score_sd_sum`).
"""

import dataclasses
from typing import Optional

import torch
from torch import Tensor

from .halves import at_least_fp32, split_halves, weighted_sum
from .records import AttentionInputs

ATTN_LOSSES = ("kl", "mse", "corr")

# log(0) is -inf, and (0 - 0) * (-inf - -inf) is NaN. Clamping probabilities
# to the smallest normal float32 before the log keeps masked keys (exact zeros
# in both rows) at exactly 0 contribution, and leaves every other value alone
# (a softmax probability below 1e-38 contributes nothing measurable anyway).
_TINY = torch.finfo(torch.float32).tiny

# corr: a real key's log-probability is read as at least log(1e-30) (69 nats below the row's
# log-sum-exp: keys that far down are tied at the floor, with no gradient); the floor keeps the
# gradient with respect to the probabilities, d/dp = d/dlog p / p, below 1e30 x its size, finite
# in fp32 under any loss scale. CORR_VAR_EPS (nats^2) is added to each row's variance: a row with
# one real key, or a flat one, has no direction to standardise (its z is 0); rows whose score sd is
# well above 1e-3 nats are standardised exactly.
CORR_LOG_FLOOR = 1e-30
CORR_VAR_EPS = 1e-6


def attention_consistency(
    a1: Tensor, a2: Tensor, query_pad_mask: Optional[Tensor] = None, loss: str = "kl", weights: Optional[Tensor] = None
) -> Tensor:
    """Distance between the halves' per-head attention rows of one layer (the module docstring's
    ``loss``).

    ``a1``, ``a2``: (H, B, Tq, Tk) softmax probabilities over keys (masked keys are exact zeros
    in both). ``query_pad_mask``: (B, Tq), True = pad query, whose row is ignored; ``weights``:
    (B, Tq), each query's factor. Averaged over heads, summed over queries. ``mse`` is a sum over
    keys, so padded keys, zero in both rows, cannot change it.
    """
    if loss == "kl":
        per_query = 0.5 * _sym_kl_rows(a1, a2)
    elif loss == "mse":
        per_query = (at_least_fp32(a1) - at_least_fp32(a2)).pow(2).sum(-1)
    elif loss == "corr":
        per_query = _ScoreCorrelationRows.apply(a1, a2)
    else:
        raise ValueError(f"unknown attention loss {loss!r}; choose from {ATTN_LOSSES}")
    per_query = per_query.mean(0)  # average over heads -> (B, Tq)
    return weighted_sum(per_query, query_pad_mask, weights)


def _centred_rows(p: Tensor, q: Tensor):
    """The two rows' log-probabilities over their real keys less their means, ``u1``, ``u2`` (0 at
    the other keys), the real-key counts ``n`` and the per-row moments ``a = mean u1^2``,
    ``b = mean u2^2``, ``c = mean u1 u2``, for fp32/fp64 probabilities."""
    realf = ((p > 0) | (q > 0)).to(p.dtype)
    n = realf.sum(-1, keepdim=True).clamp_min(1)

    def centred(x):
        lp = x.clamp_min(CORR_LOG_FLOOR).log() * realf
        return (lp - lp.sum(-1, keepdim=True) / n) * realf

    u1, u2 = centred(p), centred(q)
    a, b, c = ((x * y).sum(-1, keepdim=True) / n for x, y in ((u1, u1), (u2, u2), (u1, u2)))
    return u1, u2, n, a, b, c


class _ScoreCorrelationRows(torch.autograd.Function):
    """``mean over real keys of (z1 - z2)^2 / 2`` per row (``corr``), ``z = u / sigma`` with
    ``sigma^2 = mean u^2 + eps``, written with the rows' moments ``a``, ``b``, ``c`` (see
    :func:`_centred_rows`) as ``(a / s1^2 + b / s2^2 - 2 c / (s1 s2)) / 2``. Keeps only the two maps
    (views of the softmax outputs, which the attention's own backward keeps anyway) and recomputes
    the centred rows in the backward, one layer at a time. The gradient is a per-row combination of
    the two centred rows (already centred, so the mean's gradient drops out)::

        dL/du1 = g/(n s1^2) (1 - a/s1^2 + c/(s1 s2)) u1 - g/(n s1 s2) u2,   dL/dp = dL/du / p
    """

    @staticmethod
    def forward(ctx, p_in, q_in):
        ctx.save_for_backward(p_in, q_in)
        _, _, _, a, b, c = _centred_rows(at_least_fp32(p_in), at_least_fp32(q_in))
        s1, s2 = a + CORR_VAR_EPS, b + CORR_VAR_EPS  # the variances
        return (0.5 * (a / s1 + b / s2) - c / (s1 * s2).sqrt()).squeeze(-1)

    @staticmethod
    def backward(ctx, grad):
        p_in, q_in = ctx.saved_tensors
        p, q = at_least_fp32(p_in), at_least_fp32(q_in)
        u1, u2, n, a, b, c = _centred_rows(p, q)
        v1, v2 = a + CORR_VAR_EPS, b + CORR_VAR_EPS
        cross = c / (v1 * v2).sqrt()
        g = grad.unsqueeze(-1) / n
        mixed = -g / (v1 * v2).sqrt()

        def through(x, u_own, u_other, v_own, a_own):
            du = (g / v_own * (1 - a_own / v_own + cross)) * u_own + mixed * u_other
            return torch.where(x >= CORR_LOG_FLOOR, du / x.clamp_min(CORR_LOG_FLOOR), torch.zeros_like(du))

        return through(p, u1, u2, v1, a).to(p_in.dtype), through(q, u2, u1, v2, b).to(q_in.dtype)


def score_sd_rows(p: Tensor) -> Tensor:
    """The standard deviation (population, nats) of each row's scores over its real keys, read from
    its probabilities (``log p`` is the scores less the row's log-sum-exp, so it has their spread):
    (..., Tk) -> (...). A masked key has probability 0 and does not count (as would a key whose
    probability underflowed fp32)."""
    p = at_least_fp32(p.detach())
    real = p > 0
    logp = p.clamp_min(1e-45).log() * real
    n = real.sum(-1).clamp_min(1)
    mean = logp.sum(-1, keepdim=True) / n.unsqueeze(-1)
    return (((logp - mean) * real).pow(2).sum(-1) / n).sqrt()


def score_sd_sum(maps: Tensor, query_pad_mask: Optional[Tensor] = None) -> Tensor:
    """``[sum, count]`` (fp32, on the maps' device, no graph) of :func:`score_sd_rows` over the real
    query rows of one copy's (H, B, Tq, Tk) maps, every head (``query_pad_mask``: (B, Tq), True =
    pad): sums over blocks of queries and layers add up, and sum / count is the mean."""
    with torch.no_grad():
        per_row = score_sd_rows(maps)  # (H, B, Tq)
        real = torch.ones_like(per_row, dtype=torch.bool) if query_pad_mask is None else ~query_pad_mask
        real = real.expand_as(per_row)
        return torch.stack([per_row.masked_fill(~real, 0.0).sum(), real.sum().to(per_row.dtype)]).float()


def attention_score_sd(maps: Tensor, query_pad_mask: Optional[Tensor] = None) -> Tensor:
    """The sharpness figure of one layer: the mean score sd (nats) over the real query rows and
    heads of (H, B, Tq, Tk) maps."""
    total, count = score_sd_sum(maps, query_pad_mask)
    return total / count.clamp_min(1)


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
    sharpness: bool = False,
):
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
    (``--attn-recompute-in-backward``).

    ``sharpness``: return ``(term, [sum, count])``, the second :func:`score_sd_sum` of the first
    copy's rows, from the same blocks."""
    if block is None:
        per_query = inputs.num_heads * inputs.query.shape[1] * inputs.key.shape[0]
        block = max(1, map_block // per_query)
    # self-attention: the key input is the query input, one tensor with one gradient
    shared = inputs.key is inputs.query
    names = [f for f in _QUERY_SIDE_FIELDS + _KEY_SIDE_FIELDS if getattr(inputs, f) is not None]
    names = [f for f in names if not (shared and f == "key")]
    plan = (inputs, query_pad_mask, weights, loss, block, sharpness, names)
    fn = _DeferredAttentionTerm if in_backward else _AttentionTerm
    total, sharp = fn.apply(plan, *(getattr(inputs, f) for f in names))
    return (total, sharp) if sharpness else total


def _term_and_gradients(plan, tensors, needs):
    """The attention term of ``plan`` = (inputs, query_pad_mask, weights, loss, block, sharpness,
    names) with ``tensors`` in place of the named inputs, its gradient with respect to those that
    ``needs`` marks, in fp32 ({name: gradient}), a block of queries at a time, and the first copy's
    :func:`score_sd_sum` (zeros unless ``sharpness``)."""
    inputs, query_pad_mask, weights, loss, block, sharpness, names = plan
    needs = dict(zip(names, needs))
    sharp = torch.zeros(2, device=inputs.query.device)
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
            p1, p2 = split_halves(rec.probs(rows, key_leaf), 1)
            part = attention_consistency(p1, p2, qpad, loss, w)
            if sharpness:
                sharp += score_sd_sum(p1, qpad)
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
    return total, out, sharp


def _scaled(out, names, dtypes, grad_output):
    """The inputs' gradients: ``grad_output`` x each fp32 gradient in ``out``, in its input's dtype."""
    return tuple(None if n not in out else (grad_output * out[n]).to(d) for n, d in zip(names, dtypes))


class _AttentionTerm(torch.autograd.Function):
    """The term and its gradient in the forward; keeps the gradient (input-sized), not the maps."""

    @staticmethod
    def forward(ctx, plan, *tensors):
        names = plan[-1]
        total, out, sharp = _term_and_gradients(plan, tensors, ctx.needs_input_grad[1:])
        ctx.names, ctx.dtypes, ctx.kept = names, [t.dtype for t in tensors], [n for n in names if n in out]
        ctx.save_for_backward(*[out[n] for n in ctx.kept])
        ctx.mark_non_differentiable(sharp)
        return total, sharp

    @staticmethod
    def backward(ctx, grad_output, _grad_sharp):
        out = dict(zip(ctx.kept, ctx.saved_tensors))
        return (None, *_scaled(out, ctx.names, ctx.dtypes, grad_output))


class _DeferredAttentionTerm(torch.autograd.Function):
    """The term in the forward without a graph; the maps again, with the gradient, in the backward."""

    @staticmethod
    def forward(ctx, plan, *tensors):
        ctx.plan = plan
        ctx.save_for_backward(*tensors)
        total, _, sharp = _term_and_gradients(plan, tensors, [False] * len(tensors))
        ctx.mark_non_differentiable(sharp)
        return total, sharp

    @staticmethod
    def backward(ctx, grad_output, _grad_sharp):
        tensors = ctx.saved_tensors
        plan = ctx.plan[:5] + (False,) + ctx.plan[6:]  # the figure was taken in the forward
        _, out, _ = _term_and_gradients(plan, tensors, ctx.needs_input_grad[1:])
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
