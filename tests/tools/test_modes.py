"""The one table of modes: each name means the same criterion flags in every task and tool."""

import pytest

from lrdrop_cli import modes
from lrdrop_cli.bin import modes as modes_command

LS = ["--label-smoothing", "0.1"]


def lr_drop(kl, hidden, attn):
    return ["--criterion", "lr_drop", *LS, "--kl-weight", kl, "--hidden-weight", hidden, "--attn-weight", attn]


def sentence(output_flag, out, hidden, attn):
    return [
        "--criterion",
        "lr_drop_sentence_prediction",
        output_flag,
        out,
        "--hidden-weight",
        hidden,
        "--attn-weight",
        attn,
    ]


# mode -> flags with only the KL weight given (5): the layer terms a mode has take weight 1
TRANSLATION = {
    "baseline": ["--criterion", "label_smoothed_cross_entropy", *LS],
    "rdrop": lr_drop("5", "0", "0"),
    "lrdrop": lr_drop("5", "1", "1"),  # the paper's three terms
    "hidden": lr_drop("5", "1", "0"),
    "attn": lr_drop("5", "0", "1"),
}


@pytest.mark.parametrize("mode", list(modes.MODES))
def test_translation_flags_of_every_mode(mode):
    assert modes.criterion_flags(mode, 5.0) == TRANSLATION[mode]


@pytest.mark.parametrize("mode", list(modes.MODES))
@pytest.mark.parametrize("regression", [False, True])
def test_sentence_prediction_flags_of_every_mode(mode, regression):
    got = modes.criterion_flags(mode, 0.5, task="sentence_prediction", regression=regression)
    if mode == "baseline":
        assert got == ["--criterion", "sentence_prediction"]
        return
    on = modes.MODES[mode]
    output_flag = "--prediction-mse-weight" if regression else "--kl-weight"
    assert got == sentence(output_flag, "0.5", "1" if on["hidden"] else "0", "1" if on["attn"] else "0")


def test_given_weights_apply_only_to_terms_the_mode_has():
    assert modes.criterion_flags("hidden", 5.0, hidden=0.3, attn=2.0) == lr_drop("5", "0.3", "0")
    assert modes.criterion_flags("attn", 5.0, hidden=0.3, attn=2.0) == lr_drop("5", "0", "2")
    assert modes.criterion_flags("lrdrop", 5.0, hidden=0.0) == lr_drop("5", "0", "1")  # asked for explicitly


def test_command_prints_the_same_flags(capsys):
    modes_command.main(["hidden", "--kl-weight", "0.7"])
    assert capsys.readouterr().out.split() == lr_drop("0.7", "1", "0")
    with pytest.raises(SystemExit, match="unknown mode 'hiden'"):
        modes_command.main(["hiden"])
