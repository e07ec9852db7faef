"""The doubled batch and the tensor helpers every term shares (:mod:`lrdrop.consistency`,
:mod:`lrdrop.attention`)."""

from typing import Optional

import torch
from torch import Tensor


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


def weighted_sum(per_pos: Tensor, pad_mask: Optional[Tensor], weights: Optional[Tensor]) -> Tensor:
    """``sum of per_pos x weights`` over the positions that ``pad_mask`` (True = pad) leaves."""
    if pad_mask is not None:
        per_pos = per_pos.masked_fill(pad_mask, 0.0)  # before weighting: a NaN at a pad stays out
    if weights is not None:
        per_pos = per_pos * weights
    return per_pos.sum()
