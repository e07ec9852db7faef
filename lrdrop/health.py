"""Whether the layer terms are met by agreement or by flattening: the figures logged beside the
terms and the one warning (:class:`FlatAttentionMonitor`).

An attention term that compares probabilities (``--attn-loss kl`` or ``mse``) is met most cheaply
by shrinking the scores: at score sd 0 every row is uniform, whatever the dropout noise. In the
LibreOffice study (docs/results.md, section 0) the encoder-decoder attention of the runs that
failed that way ended at a mean score sd of 0.03-0.11 nats (one run at attention weight 0.1 at
0.44, 0.38 bits behind R-Drop), against 1.2-1.9 in every run that kept its attention (R-Drop's
lowest figure of any attention type: 1.43; LR-Drop's lowest that did not fail: 0.67). So a type
whose figure stays below :data:`FLAT_SCORE_SD` (0.5 nats) is flat.
"""

from typing import Dict, Optional

import torch
from torch import Tensor

FLAT_SCORE_SD = 0.5  # nats: below it an attention type is flat (the study's collapsed runs: 0.03-0.44)
CHECK_AFTER = 1000  # updates (and after the weight ramp) before the first check: attention forms first
CHECK_EVERY = 500  # updates between checks (each reads the figures back: one GPU sync)
EMA_DECAY = 0.98  # the checked figure: a moving average over about the last 50 training forwards


class FlatAttentionMonitor:
    """Keeps, on the device, a moving average of each ``attn_sd_TYPE`` figure of the training
    forwards (:func:`lrdrop.consistency.layer_terms`' ``stats``); from update ``max(ramp,
    CHECK_AFTER)`` on, every ``CHECK_EVERY`` updates, reads them back (one sync) and returns the
    warning once, the first time a type is below ``threshold``."""

    def __init__(self, warmup_updates: int = 0, threshold: float = FLAT_SCORE_SD, after: int = CHECK_AFTER,
                 every: int = CHECK_EVERY, decay: float = EMA_DECAY):  # fmt: skip
        self.start = max(int(warmup_updates), int(after))
        self.threshold, self.every, self.decay = float(threshold), int(every), float(decay)
        self.averages: Dict[str, Tensor] = {}
        self.next_check = self.start
        self.warned = False

    def observe(self, stats: Dict[str, Tensor], num_updates: int) -> Optional[str]:
        """Add one forward's figures; the warning (once) when a check finds a flat type, else None."""
        if self.warned:
            return None
        for name, value in stats.items():
            if name.startswith("attn_sd_"):
                value = value.detach().float()
                old = self.averages.get(name)
                self.averages[name] = value if old is None else old * self.decay + value * (1 - self.decay)
        if num_updates < self.next_check or not self.averages:
            return None
        self.next_check = num_updates + self.every
        names = sorted(self.averages)
        values = dict(zip(names, torch.stack([self.averages[n] for n in names]).tolist()))  # the one sync
        flat = {n[len("attn_sd_") :]: v for n, v in values.items() if v < self.threshold}
        if not flat:
            return None
        self.warned = True
        what = ", ".join(f"{t} {v:.3f}" for t, v in flat.items())
        return (
            f"flat attention at update {num_updates}: mean score sd (nats) {what}, below {self.threshold:g} "
            "(LibreOffice study: 0.03-0.44 in the runs that flattened, 1.2-1.9 in those that kept their attention). "
            "The two copies agree by flattening their attention rows, not by attending alike, and translation "
            "quality suffers. Use --attn-loss corr (blind to the scores' scale), or lower --attn-weight, or ramp "
            "the weights in with --consistency-warmup-updates (docs/results.md)."
        )
