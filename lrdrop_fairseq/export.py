"""Rewrite an ``*_lrdrop`` checkpoint so that plain fairseq (no ``--user-dir``) can use it.

The ``_lrdrop`` architectures share parameters and state-dict layout with
fairseq's; only the config names differ. The export also stores the config
as plain containers (no ``argparse.Namespace``), so torch's safe
``weights_only`` loading accepts it without this plugin's allow-list.
"""

import argparse

from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterionConfig
from fairseq.criterions.sentence_prediction import SentencePredictionConfig

from .criterions.lr_drop import LRDropConfig
from .criterions.lr_drop_sentence_prediction import LRDropSentencePredictionConfig
from .models import PLAIN_ARCH  # lrdrop arch -> (plain arch, arch function)

# lrdrop criterion -> (the fairseq criterion it extends, the fields it adds)
PLAIN_CRITERION = {
    name: (plain, set(ours.__dataclass_fields__) - set(theirs.__dataclass_fields__))
    for name, plain, ours, theirs in (
        ("lr_drop", "label_smoothed_cross_entropy", LRDropConfig, LabelSmoothedCrossEntropyCriterionConfig),
        (
            "lr_drop_sentence_prediction",
            "sentence_prediction",
            LRDropSentencePredictionConfig,
            SentencePredictionConfig,
        ),
    )
}


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
    crit = dict(cfg.get("criterion") or {})
    name = crit.get("_name") or model_cfg.get("criterion")
    if name in PLAIN_CRITERION:
        plain_name, added = PLAIN_CRITERION[name]
        crit = {k: v for k, v in crit.items() if k not in added}
        crit["_name"] = plain_name
        model_cfg = {k: v for k, v in model_cfg.items() if k not in added}
        if "criterion" in model_cfg:
            model_cfg["criterion"] = plain_name
    cfg["model"] = model_cfg
    cfg["common"] = {**cfg["common"], "user_dir": None}
    cfg["criterion"] = crit
    out = {**state, "cfg": cfg, "args": None}
    if not keep_optimizer_state:
        out["last_optimizer_state"] = None
    return out
