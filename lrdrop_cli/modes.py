"""The experiment modes, one table for lrdrop-compare, lrdrop-benchmark and the recipes' MODE.

  lrdrop-modes MODE [--kl-weight 5] [--hidden-weight W] [--attn-weight W]   # prints the criterion flags
  lrdrop-modes MODE --task sentence_prediction [--regression]              # ... for classification/regression

baseline      label-smoothed cross-entropy, one copy per batch
rdrop         lr_drop, output KL only (R-Drop)
lrdrop        lr_drop, output KL + hidden states at the FFN sublayer's output + attention: LR-Drop
              as the paper describes it (its L_HSR compares HS(x) = max(0, x W1 + b1) W2 + b2)
lrdrop_layer  lr_drop, output KL + hidden states at each layer's output + attention: this
              project's earlier reading of the paper (before 2026-12-05), kept for comparison
hidden        lr_drop, output KL + hidden states at the FFN output (ablation)
attn          lr_drop, output KL + attention (ablation)
lrdrop_sb     lr_drop, LR-Drop's three terms with scale-blind layer distances: the FFN output's
              relative MSE (--hidden-loss rel_mse) and the attention scores' correlation
              (--attn-loss corr), which cannot be met by shrinking the states or flattening the rows
attn_corr     lr_drop, output KL + attention by the scores' correlation (ablation)
lrdrop_corr   lr_drop, LR-Drop's three terms with the paper's FFN-output MSE and the attention by
              the scores' correlation (--attn-loss corr): the screen's formulation that kept its
              attention at weight 1 and stayed closest to R-Drop (docs/results.md, section 00)

A mode's name always means the same terms, in every tool and recipe. A term that is on
takes its weight from the flag, or else from DEFAULT_WEIGHTS, which are lr_drop's own defaults
(our choice, the paper's values are not known): attention 0.1; the hidden term 0.1 at the FFN
output and 1 at the layer output. In the LibreOffice study (docs/results.md, section 0) the
attention term at weight 1 flattened the encoder-decoder attention to uniform rows, and the
FFN-output MSE, which is not scale-invariant, at weight 1 shrank the FFN outputs 6x; both ended
1 bit or more of validation nll behind R-Drop. A term that is off is 0 whatever the flag says.
The KL weight has no default here: it is the recipe's (R-Drop's alpha: 5 for IWSLT, 0.7 for
CNN/DM).

With --task sentence_prediction the criteria are fairseq's sentence_prediction (baseline)
and lr_drop_sentence_prediction; with --regression the output term is the squared
difference of the two predictions (--prediction-mse-weight) instead of the KL.
"""

import sys
from typing import Iterable, List, Optional

from lrdrop.options import DEFAULTS, HIDDEN_WEIGHT_BY_SITE

# mode -> which lr_drop terms are on and, where the hidden term is, its --hidden-site
# (None: the baseline criterion)
MODES = {
    "baseline": None,
    "rdrop": {"kl": True, "hidden": False, "attn": False},
    "lrdrop": {"kl": True, "hidden": True, "attn": True, "site": "ffn"},
    "lrdrop_layer": {"kl": True, "hidden": True, "attn": True, "site": "layer"},
    "hidden": {"kl": True, "hidden": True, "attn": False, "site": "ffn"},
    "attn": {"kl": True, "hidden": False, "attn": True},
    "lrdrop_sb": {
        "kl": True,
        "hidden": True,
        "attn": True,
        "site": "ffn",
        "hidden_loss": "rel_mse",
        "attn_loss": "corr",
    },  # fmt: skip
    "attn_corr": {"kl": True, "hidden": False, "attn": True, "attn_loss": "corr"},
    "lrdrop_corr": {"kl": True, "hidden": True, "attn": True, "site": "ffn", "attn_loss": "corr"},
}


# the weight of a layer term that a mode turns on, where no weight is given: lr_drop's own defaults,
# the hidden term's by its site (see the module's docstring)
DEFAULT_WEIGHTS = {"hidden": HIDDEN_WEIGHT_BY_SITE, "attn": DEFAULTS["attn_weight"]}


def choose(spec: str, flag: str, prog: str, choices: Iterable[str] = MODES) -> List[str]:
    """The modes of the comma list ``spec`` (the value of ``prog``'s ``flag``), in its order; an
    unknown one exits with a message naming the flag and the choices (every tool's one check)."""
    choices = list(choices)
    chosen = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in choices]
    if unknown:
        sys.exit(f"{prog}: unknown {flag} {','.join(unknown)}; choose from {', '.join(choices)}")
    return chosen


def weights(mode: str, kl: float, hidden: Optional[float] = None, attn: Optional[float] = None) -> Optional[dict]:
    """lr_drop's options for ``mode``, as keyword arguments of the criterion or of lrdrop_hf's
    LRDropArguments: the given weight where a term is on (None: its :data:`DEFAULT_WEIGHTS` entry),
    else 0, and ``hidden_site`` where the hidden term is on (the site is part of the mode's
    meaning), ``hidden_loss`` / ``attn_loss`` where the mode names its distance; None for baseline."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    on = MODES[mode]
    if on is None:
        return None
    hidden = DEFAULT_WEIGHTS["hidden"].get(on.get("site"), 0.0) if hidden is None else hidden
    attn = DEFAULT_WEIGHTS["attn"] if attn is None else attn
    w = {
        "kl_weight": kl if on["kl"] else 0.0,
        "hidden_weight": hidden if on["hidden"] else 0.0,
        "attn_weight": attn if on["attn"] else 0.0,
    }
    if w["hidden_weight"] > 0:
        w["hidden_site"] = on["site"]
        if "hidden_loss" in on:
            w["hidden_loss"] = on["hidden_loss"]
    if w["attn_weight"] > 0 and "attn_loss" in on:
        w["attn_loss"] = on["attn_loss"]
    return w


TASKS = ("translation", "sentence_prediction")


def criterion_flags(
    mode: str,
    kl: float,
    hidden: Optional[float] = None,
    attn: Optional[float] = None,
    label_smoothing: float = 0.1,
    task: str = "translation",
    regression: bool = False,
) -> List[str]:
    """The fairseq criterion flags of ``mode``; ``task``: one of :data:`TASKS` (translation also
    covers summarization); ``regression``: a sentence_prediction regression head."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    w = weights(mode, kl, hidden, attn)
    if w is None:
        if task == "sentence_prediction":
            return ["--criterion", "sentence_prediction"]
        return ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", f"{label_smoothing:g}"]
    if task == "sentence_prediction":
        output_flag = "--prediction-mse-weight" if regression else "--kl-weight"
        flags = ["--criterion", "lr_drop_sentence_prediction", output_flag, f"{w['kl_weight']:g}"]
    else:
        flags = ["--criterion", "lr_drop", "--label-smoothing", f"{label_smoothing:g}"]
        flags += ["--kl-weight", f"{w['kl_weight']:g}"]
    flags += ["--hidden-weight", f"{w['hidden_weight']:g}", "--attn-weight", f"{w['attn_weight']:g}"]
    for name in ("hidden_site", "hidden_loss", "attn_loss"):
        if name in w:
            flags += ["--" + name.replace("_", "-"), w[name]]
    return flags
