"""Rewrite an ``*_lrdrop`` checkpoint so that plain fairseq (no ``--user-dir``) can use it.

The ``_lrdrop`` architectures share parameters and state-dict layout with
fairseq's; only the config names differ. The export also stores the config
as plain containers (no ``argparse.Namespace``), so torch's safe
``weights_only`` loading accepts it without this plugin's allow-list.
"""

import argparse

from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterionConfig

from .criterions.lr_drop import LRDropConfig
from .models import PLAIN_ARCH  # lrdrop arch -> (plain arch, arch function)

# fields the lr_drop criterion adds on top of label_smoothed_cross_entropy
_LRDROP_ONLY_FIELDS = set(LRDropConfig.__dataclass_fields__) - set(
    LabelSmoothedCrossEntropyCriterionConfig.__dataclass_fields__
)


def to_plain_fairseq(state: dict, keep_optimizer_state: bool = False) -> dict:
    """Return a copy of a fairseq checkpoint dict with plain fairseq names."""
    cfg = dict(state["cfg"])
    model_cfg = cfg["model"]
    model_cfg = dict(vars(model_cfg)) if isinstance(model_cfg, argparse.Namespace) else dict(model_cfg)
    arch = model_cfg.get("arch") or model_cfg.get("_name")
    if arch not in PLAIN_ARCH:
        raise ValueError(
            f"checkpoint architecture {arch!r} is not an lrdrop architecture "
            f"(known: {', '.join(sorted(PLAIN_ARCH))}); it needs no export"
        )
    plain_arch = PLAIN_ARCH[arch][0]
    model_cfg["arch"] = model_cfg["_name"] = plain_arch
    model_cfg["user_dir"] = None
    if model_cfg.get("criterion") == "lr_drop":
        model_cfg["criterion"] = "label_smoothed_cross_entropy"
    for f in _LRDROP_ONLY_FIELDS:
        model_cfg.pop(f, None)
    cfg["model"] = model_cfg
    cfg["common"] = {**cfg["common"], "user_dir": None}
    crit = dict(cfg.get("criterion") or {})
    if crit.get("_name") == "lr_drop":
        crit = {k: v for k, v in crit.items() if k not in _LRDROP_ONLY_FIELDS}
        crit["_name"] = "label_smoothed_cross_entropy"
    cfg["criterion"] = crit
    out = {**state, "cfg": cfg, "args": None}
    if not keep_optimizer_state:
        out["last_optimizer_state"] = None
    return out
