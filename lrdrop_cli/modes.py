"""The experiment modes, one table for lrdrop-compare, lrdrop-benchmark and the recipes' MODE.

  lrdrop-modes MODE [--kl-weight 5 --hidden-weight 1 --attn-weight 1]   # prints the criterion flags

baseline  label-smoothed cross-entropy, one copy per batch
rdrop     lr_drop, output KL only (R-Drop)
lrdrop    lr_drop, output KL + hidden states + attention (LR-Drop)
hidden    lr_drop, output KL + hidden states (ablation)
attn      lr_drop, output KL + attention (ablation)
"""

import argparse
import sys
from typing import List, Optional

# mode -> which lr_drop terms are on (None: the baseline criterion)
MODES = {
    "baseline": None,
    "rdrop": {"kl": True, "hidden": False, "attn": False},
    "lrdrop": {"kl": True, "hidden": True, "attn": True},
    "hidden": {"kl": True, "hidden": True, "attn": False},
    "attn": {"kl": True, "hidden": False, "attn": True},
}


def weights(mode: str, kl: float, hidden: float, attn: float) -> Optional[dict]:
    """lr_drop's weights for ``mode`` (the given weight where a term is on, else 0); None for baseline."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    on = MODES[mode]
    if on is None:
        return None
    return {
        "kl_weight": kl if on["kl"] else 0.0,
        "hidden_weight": hidden if on["hidden"] else 0.0,
        "attn_weight": attn if on["attn"] else 0.0,
    }


def criterion_flags(mode: str, kl: float, hidden: float, attn: float, label_smoothing: float = 0.1) -> List[str]:
    w = weights(mode, kl, hidden, attn)
    if w is None:
        return ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", f"{label_smoothing:g}"]
    return [
        "--criterion",
        "lr_drop",
        "--label-smoothing",
        f"{label_smoothing:g}",
        "--kl-weight",
        f"{w['kl_weight']:g}",
        "--hidden-weight",
        f"{w['hidden_weight']:g}",
        "--attn-weight",
        f"{w['attn_weight']:g}",
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode")
    ap.add_argument("--kl-weight", type=float, default=5.0)
    ap.add_argument("--hidden-weight", type=float, default=1.0)
    ap.add_argument("--attn-weight", type=float, default=1.0)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    a = ap.parse_args(argv)
    try:
        print(" ".join(criterion_flags(a.mode, a.kl_weight, a.hidden_weight, a.attn_weight, a.label_smoothing)))
    except ValueError as e:
        sys.exit(f"lrdrop-modes: {e}")


if __name__ == "__main__":
    main()
