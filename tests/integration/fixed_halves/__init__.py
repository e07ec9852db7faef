"""A test-only ``--user-dir``: lrdrop_fairseq with the two copies of each batch made different by
a fixed rule instead of by dropout masks.

Dropout masks come from each process's random stream, so two ranks cannot reproduce one
process's masks. Here the second copy of every token tensor has each word id above 4 lowered by
one (special symbols and padding untouched): the two "sub-models" then see different inputs, every
consistency term is non-zero, and the whole update is a deterministic function of its sentences,
whichever micro-batch or rank they land in. Run with ``--dropout 0 --attention-dropout 0``.
"""

import torch

import lrdrop_fairseq  # noqa: F401  (registers the archs and criteria)
from lrdrop_fairseq.criterions import lr_drop

_double = lr_drop.double


def double(x):
    if torch.is_tensor(x) and x.dtype == torch.long and x.dim() == 2:  # tokens, targets
        return torch.cat([x, torch.where(x > 4, x - 1, x)])
    return _double(x)


lr_drop.double = double
