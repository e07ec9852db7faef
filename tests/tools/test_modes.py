"""The one table of modes: each name means the same criterion flags in every task and tool."""

import pytest

from lrdrop_cli import modes
from lrdrop_cli.bin import modes as modes_command

LS = ["--label-smoothing", "0.1"]


def _distances(site, hidden_loss, attn_loss):
    flags = ["--hidden-site", site] if site else []
    flags += ["--hidden-loss", hidden_loss] if hidden_loss else []
    return flags + (["--attn-loss", attn_loss] if attn_loss else [])


def lr_drop(kl, hidden, attn, site=None, hidden_loss=None, attn_loss=None):
    flags = ["--criterion", "lr_drop", *LS, "--kl-weight", kl, "--hidden-weight", hidden, "--attn-weight", attn]
    return flags + _distances(site, hidden_loss, attn_loss)


def sentence(output_flag, out, hidden, attn, site=None, hidden_loss=None, attn_loss=None):
    flags = ["--criterion", "lr_drop_sentence_prediction", output_flag, out]
    flags += ["--hidden-weight", hidden, "--attn-weight", attn]
    return flags + _distances(site, hidden_loss, attn_loss)


# mode -> flags with only the KL weight given (5): attention takes weight 0.1 (weight 1 flattened the
# encoder-decoder attention in the LibreOffice study), the hidden term 0.1 at the FFN output (weight 1
# shrank the FFN outputs there) and 1 at the layer output
TRANSLATION = {
    "baseline": ["--criterion", "label_smoothed_cross_entropy", *LS],
    "rdrop": lr_drop("5", "0", "0"),
    "lrdrop": lr_drop("5", "0.1", "0.1", "ffn"),  # the paper's three terms: HS(x) is the FFN sublayer's output
    "lrdrop_layer": lr_drop("5", "1", "0.1", "layer"),  # the earlier reading, each layer's output
    "hidden": lr_drop("5", "0.1", "0", "ffn"),
    "attn": lr_drop("5", "0", "0.1"),
    # the scale-blind distances: the FFN output's relative MSE, the scores' correlation
    "lrdrop_sb": lr_drop("5", "0.1", "0.1", "ffn", "rel_mse", "corr"),
    "attn_corr": lr_drop("5", "0", "0.1", attn_loss="corr"),
    "lrdrop_corr": lr_drop("5", "0.1", "0.1", "ffn", None, "corr"),
}
# mode -> (hidden, attn, site) of the classification criterion
SENTENCE = {
    "rdrop": ("0", "0", None),
    "lrdrop": ("0.1", "0.1", "ffn"),
    "lrdrop_layer": ("1", "0.1", "layer"),
    "hidden": ("0.1", "0", "ffn"),
    "attn": ("0", "0.1", None),
    "lrdrop_sb": ("0.1", "0.1", "ffn", "rel_mse", "corr"),
    "attn_corr": ("0", "0.1", None, None, "corr"),
    "lrdrop_corr": ("0.1", "0.1", "ffn", None, "corr"),
}


def test_the_table_has_every_mode_pinned_here():
    assert set(modes.MODES) == set(TRANSLATION) == set(SENTENCE) | {"baseline"}


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
    output_flag = "--prediction-mse-weight" if regression else "--kl-weight"
    assert got == sentence(output_flag, "0.5", *SENTENCE[mode])
    if not regression:  # a classification head unless asked
        assert modes.criterion_flags(mode, 0.5, task="sentence_prediction") == got


@pytest.mark.parametrize("mode", list(modes.MODES))
def test_in_process_options_of_every_mode_match_its_flags(mode):
    """modes.weights is what the benchmarks hand the criterion and LRDropArguments in process: the
    same weights and hidden site as the mode's command-line flags (a site without its flag would
    measure the default site under another mode's name)."""
    w = modes.weights(mode, 5.0)
    if mode == "baseline":
        assert w is None
        return
    flags = TRANSLATION[mode]
    expected = {name: float(flags[flags.index("--" + name.replace("_", "-")) + 1])
                for name in ("kl_weight", "hidden_weight", "attn_weight")}  # fmt: skip
    for name in ("hidden_site", "hidden_loss", "attn_loss"):
        if "--" + name.replace("_", "-") in flags:
            expected[name] = flags[flags.index("--" + name.replace("_", "-")) + 1]
    assert w == expected
    assert "hidden_site" not in modes.weights(mode, 5.0, hidden=0.0)


def test_given_weights_apply_only_to_terms_the_mode_has():
    assert modes.criterion_flags("hidden", 5.0, hidden=0.3, attn=2.0) == lr_drop("5", "0.3", "0", "ffn")
    assert modes.criterion_flags("attn", 5.0, hidden=0.3, attn=2.0) == lr_drop("5", "0", "2")
    assert modes.criterion_flags("rdrop", 5.0, hidden=0.3, attn=2.0) == lr_drop("5", "0", "0")
    # asked for explicitly: no hidden term, so no site
    assert modes.criterion_flags("lrdrop", 5.0, hidden=0.0) == lr_drop("5", "0", "0.1")


def test_command_prints_the_same_flags(capsys):
    modes_command.main(["hidden", "--kl-weight", "0.7"])
    assert capsys.readouterr().out.split() == lr_drop("0.7", "0.1", "0", "ffn")
    modes_command.main(["lrdrop"])
    assert capsys.readouterr().out.split() == lr_drop("5", "0.1", "0.1", "ffn")
    with pytest.raises(SystemExit, match="unknown mode 'hiden'"):
        modes_command.main(["hiden"])


def test_choose_keeps_the_order_and_names_the_flag_of_an_unknown_mode():
    assert modes.choose(" lrdrop,baseline ,,rdrop", "--modes", "tool") == ["lrdrop", "baseline", "rdrop"]
    assert modes.choose("", "--configs", "compare") == []  # variants only
    assert modes.choose("plain,rdrop", "--modes", "benchmark", ("plain", *modes.MODES)) == ["plain", "rdrop"]
    with pytest.raises(SystemExit, match=r"^compare: unknown --configs hiden,x; choose from baseline, rdrop, lrdrop,"):
        modes.choose("rdrop,hiden,x", "--configs", "compare")
    with pytest.raises(SystemExit, match="unknown --modes plain"):
        modes.choose("plain", "--modes", "demo")


def test_the_modes_defaults_are_lr_drops_own():
    """A mode's unnamed weights are the criterion's defaults, so ``--criterion lr_drop`` with no
    weights is ``lrdrop-modes lrdrop``: one set of defaults, not two that drift apart."""
    from lrdrop.options import ConsistencySetup
    from lrdrop_fairseq.criterions.lr_drop import LRDropConfig

    cfg = LRDropConfig()
    assert cfg.hidden_weight is None  # by site
    for mode in ("lrdrop", "lrdrop_layer"):  # each site: the weights lr_drop resolves when none is given
        site = modes.MODES[mode]["site"]
        crit = ConsistencySetup()
        crit.setup_consistency({"kl_loss": ("--kl-weight", cfg.kl_weight)}, hidden_site=site)
        assert modes.criterion_flags(mode, cfg.kl_weight) == lr_drop(
            f"{cfg.kl_weight:g}", f"{crit.hidden_weight:g}", f"{crit.attn_weight:g}", site
        )
    assert cfg.hidden_site == "ffn"


@pytest.mark.parametrize("tool", ["demo", "demo_classification", "demo_summarization", "compare"])
def test_the_tools_leave_the_layer_weights_to_the_mode(tool):
    """Every tool that trains a mode takes its layer weights from the table unless given: a tool
    default of 0 would make its ``hidden`` mode silently R-Drop, one of 1 the collapsing weight."""
    import importlib

    args = importlib.import_module(f"lrdrop_cli.bin.{tool}").build_parser().parse_args([])
    assert (args.hidden_weight, args.attn_weight) == (None, None)
    assert modes.criterion_flags("hidden", args.kl_weight, args.hidden_weight, args.attn_weight) == lr_drop(
        "1", "0.1", "0", "ffn"
    )
