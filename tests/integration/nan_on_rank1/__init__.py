"""A test-only ``--user-dir``: lrdrop_fairseq whose attention term turns NaN on rank 1 alone,
from its third training forward on, as an overflow on one GPU would. Every rank must still stop
together (fairseq's check after the gradients' all-reduce), none may hang."""

import torch

import lrdrop_fairseq  # noqa: F401  (registers the archs and criteria)
from lrdrop import consistency

_layer_terms = consistency.layer_terms
_calls = [0]


def layer_terms(*args, **kwargs):
    terms = _layer_terms(*args, **kwargs)
    _calls[0] += 1
    if torch.distributed.is_initialized() and torch.distributed.get_rank() == 1 and _calls[0] >= 3:
        terms["attn_loss"] = terms["attn_loss"] * float("nan")
    return terms


consistency.layer_terms = layer_terms
