"""The contract between the ``*_lrdrop`` models and the LR-Drop criteria: what a model records.

- :data:`ATTN_TYPES`: the attention types a model can record, and :data:`QUERY_SIDE`, the
  side whose tokens are each type's queries (whose padding masks its rows);
- :data:`HIDDEN_SITES`: which hidden state of a layer is recorded;
- :class:`RecordSpec`: what the criterion asks one forward to record;
- :class:`AttentionInputs`: one attention module's record, from which its per-head
  probabilities are computed when the loss needs them.

The models (models/recording.py) produce these, the loss math (consistency.py) reads them;
neither imports the other.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# A module whose maps have at most this many entries (H x 2B x Tq x Tk) takes fairseq's explicit
# path while recording, which returns the maps for free: cheaper than recomputing them when they
# are small (every IWSLT shape). Larger ones stay on torch's fused kernel and the term recomputes
# them in blocks (docs/benchmarks.md measures both sides).
SMALL_MAP = 2**22

# attention type -> the side whose tokens are its queries (whose padding masks its rows)
QUERY_SIDE = {"encoder_self": "encoder", "decoder_self": "decoder", "encoder_decoder": "decoder"}
ATTN_TYPES = tuple(QUERY_SIDE)
HIDDEN_SITES = ("layer", "ffn")


@dataclass(frozen=True)
class RecordSpec:
    """What one forward pass should record.

    ``layers``: ``None`` for every layer, else layer indices (Python-style, so
    -1 is the last layer), applied to encoder and decoder layers alike.
    ``hidden_site``: which hidden state of a layer, one of :data:`HIDDEN_SITES`.
    ``small_map``: the most map entries (H x 2B x Tq x Tk) a self-attention module records from
    fairseq's explicit path; larger ones stay on the fused kernel and the term recomputes them.
    """

    hidden: bool = True
    attn_types: Tuple[str, ...] = ATTN_TYPES
    layers: Optional[Tuple[int, ...]] = None
    hidden_site: str = "ffn"
    small_map: int = SMALL_MAP  # a self-attention module with more map entries is recomputed by the term

    def select(self, num_layers: int) -> List[int]:
        if self.layers is None:
            return list(range(num_layers))
        picked = []
        for i in self.layers:
            if not -num_layers <= i < num_layers:
                raise IndexError(
                    f"--consistency-layers names layer {i}, but the model has {num_layers} "
                    f"layers (valid: 0..{num_layers - 1}, or negative from the end)"
                )
            picked.append(i % num_layers)
        return sorted(set(picked))


@dataclass
class AttentionInputs:
    """What one attention module saw in a doubled forward: enough to recompute its per-head
    probabilities ``softmax(q k^T / sqrt(d) + masks)`` (before attention dropout) when the loss
    needs them. A module with large maps therefore stays on torch's fused kernel, which keeps
    no (B*H, Tq, Tk) maps, and the term computes them a block of queries at a time; a module
    with small maps (:data:`SMALL_MAP`) records them from fairseq's explicit path in ``maps``.

    ``query`` (Tq, 2B, C) and ``key`` (Tk, 2B, Ck) are the inputs of the query and key
    projections (for self-attention, the same tensor), or, with ``q_weight``/``k_weight`` None,
    the projected queries and keys themselves, (Tq, 2B, H*d) or (Tq, 2B, H, d) (a view of what
    the Hugging Face adapter takes from the attention interface, after rotary positions, any LoRA
    delta included: nothing is copied to keep it);
    ``key_padding_mask`` (2B, Tk), True/1 at pads; ``attn_mask`` (Tq, Tk), or (2B or 1, H or 1,
    Tq or 1, Tk) per sentence (a model's own mask), added to the scores (-inf for a causal mask),
    or bool (True = masked). ``finite_masks``: masked scores are set to the lowest finite value
    instead of -inf (a row whose keys are all masked, as left padding gives, is then uniform,
    not NaN).
    """

    query: Tensor
    key: Tensor
    q_weight: Optional[Tensor]  # None: ``query`` is projected already
    q_bias: Optional[Tensor]
    k_weight: Optional[Tensor]  # None: ``key`` is projected already
    k_bias: Optional[Tensor]
    num_heads: int
    scaling: float
    key_padding_mask: Optional[Tensor] = None
    attn_mask: Optional[Tensor] = None
    maps: Optional[Tensor] = None  # (H, 2B, Tq, Tk) when the module computed them anyway (small maps)
    score_bias: Optional[Tensor] = None  # (2B or 1, H, Tq, Tk) added to the scores: T5's position bias
    finite_masks: bool = False  # masked scores get the lowest finite value, as Hugging Face models mask them

    def keys(self) -> Tensor:
        """The projected keys, (2B*H, Tk, d), as fairseq's explicit path lays them out."""
        tk, bsz = self.key.shape[:2]
        k = self.key if self.k_weight is None else F.linear(self.key, self.k_weight, self.k_bias)
        return k.contiguous().view(tk, bsz * self.num_heads, -1).transpose(0, 1)

    def probs(self, rows: slice = slice(None), keys: Optional[Tensor] = None) -> Tensor:
        """(H, 2B, rows, Tk) fp32 probabilities of the queries ``rows``, as fairseq's explicit
        attention path computes them (projections in the inputs' precision, softmax in fp32);
        ``keys``: :meth:`keys`, when the caller has them already."""
        if self.maps is not None:
            return self.maps[:, :, rows]
        query = self.query[rows]
        tq, bsz = query.shape[:2]
        tk, h = self.key.shape[0], self.num_heads
        k = self.keys() if keys is None else keys
        q = query if self.q_weight is None else F.linear(query, self.q_weight, self.q_bias)
        q = (q * self.scaling).contiguous().view(tq, bsz * h, -1).transpose(0, 1)
        scores = torch.bmm(q, k.transpose(1, 2)).view(bsz, h, tq, tk)
        if self.score_bias is not None:
            scores = scores + self.score_bias[:, :, rows].to(scores.dtype)
        low = torch.finfo(scores.dtype).min if self.finite_masks else float("-inf")
        if self.attn_mask is not None:
            mask = self.attn_mask
            # (Tq, Tk) for every sentence, or a model's own (N, H or 1, Tq or 1, Tk)
            mask = mask[rows] if mask.dim() == 2 else mask if mask.shape[2] == 1 else mask[:, :, rows]
            if mask.dtype == torch.bool:
                scores = scores.masked_fill(mask, low)
            else:
                scores = scores + mask.to(scores.dtype)
        if self.key_padding_mask is not None:
            scores = scores.masked_fill(self.key_padding_mask.to(torch.bool)[:, None, None, :], low)
        return F.softmax(scores.float(), dim=-1).transpose(0, 1)
