"""lrdrop-export's rewrite of a checkpoint dict, on a hand-made one."""

import argparse

import pytest

from lrdrop_fairseq.export import to_plain_fairseq


def _state(model_as_dict=False):
    arch = "transformer_lrdrop_iwslt_de_en"
    model = dict(arch=arch, _name=arch, criterion="lr_drop", kl_weight=5.0, attn_weight=1.0, dropout=0.3, user_dir="x")
    model = model if model_as_dict else argparse.Namespace(**model)  # a legacy model's cfg is its Namespace
    crit = {"_name": "lr_drop", "kl_weight": 5.0, "hidden_weight": 0.0, "attn_weight": 1.0, "label_smoothing": 0.1}
    return {
        "cfg": {"model": model, "criterion": crit, "common": {"user_dir": "/plugin", "seed": 1}},
        "model": {"w": 1},
        "last_optimizer_state": {"state": "big"},
        "optimizer_history": [{"num_updates": 7}],
    }


@pytest.mark.parametrize("model_as_dict", [False, True], ids=["namespace", "dict"])
def test_names_become_fairseqs_and_our_flags_go(model_as_dict):
    out = to_plain_fairseq(_state(model_as_dict))
    assert out["cfg"]["model"]["arch"] == out["cfg"]["model"]["_name"] == "transformer_iwslt_de_en"
    assert out["cfg"]["model"]["criterion"] == "label_smoothed_cross_entropy"
    assert out["cfg"]["criterion"] == {"_name": "label_smoothed_cross_entropy", "label_smoothing": 0.1}
    assert "kl_weight" not in out["cfg"]["model"] and out["cfg"]["model"]["dropout"] == 0.3
    assert out["cfg"]["common"] == {"user_dir": None, "seed": 1} and out["cfg"]["model"]["user_dir"] is None
    assert out["model"] == {"w": 1} and out["optimizer_history"] == [{"num_updates": 7}]


def test_optimizer_state_dropped_unless_kept():
    assert to_plain_fairseq(_state())["last_optimizer_state"] is None
    assert to_plain_fairseq(_state(), keep_optimizer_state=True)["last_optimizer_state"] == {"state": "big"}


def test_a_plain_checkpoint_needs_no_export():
    state = _state()
    state["cfg"]["model"].arch = "transformer_iwslt_de_en"
    with pytest.raises(ValueError, match="not an lrdrop architecture"):
        to_plain_fairseq(state)


def test_a_checkpoint_naming_its_criterion_in_the_model_args_only():
    """Older checkpoints keep the criterion in the model's args, with no criterion section: it is
    renamed there and its flags go all the same."""
    state = _state()
    state["cfg"]["criterion"] = None
    out = to_plain_fairseq(state)
    assert out["cfg"]["model"]["criterion"] == "label_smoothed_cross_entropy"
    assert "kl_weight" not in out["cfg"]["model"] and "attn_weight" not in out["cfg"]["model"]
    assert out["cfg"]["model"]["dropout"] == 0.3
