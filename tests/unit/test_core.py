"""The framework-free core (``lrdrop``): importing it brings in torch and nothing of fairseq or
Hugging Face, so any adapter can build on it; its options check as the fairseq flags do."""

import os
import subprocess
import sys

import pytest

from lrdrop.options import DEFAULTS, HIDDEN_WEIGHT_BY_SITE, ConsistencySetup, LRDropConfigError


def test_importing_the_core_imports_neither_fairseq_nor_transformers():
    code = (
        "import sys, lrdrop, lrdrop.consistency, lrdrop.records, lrdrop.options\n"
        "import lrdrop_hf.arguments\n"  # the HF adapter's options and loss need no transformers either
        "print(sorted(m for m in ('fairseq', 'transformers', 'lrdrop_fairseq') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_fairseq_flags_and_the_hf_arguments_are_the_cores_options():
    """One table: the same names, defaults and help in fairseq's dataclass and LRDropArguments."""
    import dataclasses

    from lrdrop.options import HELP
    from lrdrop_fairseq.criterions.consistency_base import CONSISTENCY_FIELDS, ConsistencyConfig
    from lrdrop_hf.arguments import LRDropArguments

    assert set(CONSISTENCY_FIELDS) == set(DEFAULTS)
    for cls in (ConsistencyConfig, LRDropArguments):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert {name: fields[name].default for name in DEFAULTS} == DEFAULTS, cls
        assert {name: fields[name].metadata["help"] for name in DEFAULTS} == HELP, cls


def test_setup_checks_and_ramps_the_weights():
    loss = ConsistencySetup()
    loss.setup_consistency({"kl_loss": ("--kl-weight", 2.0)}, hidden_weight=1.0, consistency_warmup_updates=10)
    assert loss.record_spec.hidden and loss.record_spec.hidden_site == "ffn"
    assert loss.weights_at(5) == {"kl_loss": 1.0, "hidden_loss": 0.5, "attn_loss": 0.05}
    assert loss.weights_at(50) == {"kl_loss": 2.0, "hidden_loss": 1.0, "attn_loss": 0.1}
    assert loss.add_weighted(1.0, {"kl_loss": 3.0, "attn_loss": 4.0}, 50) == 1.0 + 2 * 3.0 + 0.1 * 4.0
    with pytest.raises(LRDropConfigError, match="--hidden-site 'fc2': choose from layer, ffn"):
        loss.setup_consistency({}, hidden_site="fc2")
    with pytest.raises(LRDropConfigError, match="--kl-weight must be >= 0"):
        loss.setup_consistency({"kl_loss": ("--kl-weight", float("nan"))})
    with pytest.raises(TypeError, match="hidden_weigth"):
        loss.setup_consistency({}, hidden_weigth=1.0)
    # a term at weight 0 records nothing (no memory, no time); both at 0: plain R-Drop, no recording
    loss.setup_consistency({}, hidden_weight=0.0, attn_weight=0.5, attn_types="ALL")
    assert not loss.record_spec.hidden and len(loss.record_spec.attn_types) == 3 and not loss.attn_types_named
    loss.setup_consistency({}, hidden_weight=0.5, attn_weight=0.0)
    assert loss.record_spec.hidden and loss.record_spec.attn_types == ()
    loss.setup_consistency({}, hidden_weight=0.0, attn_weight=0.0)
    assert loss.record_spec is None
    loss.setup_consistency({"kl_loss": ("--kl-weight", 2.0)}, hidden_weight=1.0, consistency_warmup_updates=1)
    assert loss.weights_at(0) == {"kl_loss": 0.0, "hidden_loss": 0.0, "attn_loss": 0.0}  # ramped from 0
    assert loss.weights_at(1) == {"kl_loss": 2.0, "hidden_loss": 1.0, "attn_loss": 0.1}
    # no hidden weight given: by the site, 0.1 at the FFN output (not scale-invariant), 1 at the layer output
    loss.setup_consistency({})
    assert loss.hidden_weight == 0.1 and loss.record_spec.hidden_site == "ffn"
    loss.setup_consistency({}, hidden_site="layer")
    assert loss.hidden_weight == 1.0 and loss.record_spec.hidden_site == "layer"
    loss.setup_consistency({}, hidden_site="layer", hidden_weight=0.3)
    assert loss.hidden_weight == 0.3
    loss.setup_consistency({}, attn_map_block=1)  # one map entry at a time: slow, but valid
    with pytest.raises(LRDropConfigError, match="--attn-map-block must be >= 1"):
        loss.setup_consistency({}, attn_map_block=0)


def test_describe_gives_every_weight_as_resolved():
    """The start-up log line: the hidden weight as its site resolves it, what each term compares."""
    loss = ConsistencySetup()
    loss.setup_consistency({"kl_loss": ("--kl-weight", 5.0)})
    assert loss.describe() == (
        "consistency terms: --kl-weight 5; --hidden-weight 0.1 (mse at --hidden-site ffn); "
        "--attn-weight 0.1 (kl over encoder_self, decoder_self, encoder_decoder); layers all (mean over layers)"
    )
    assert "(kl over encoder_self);" in loss.describe(attn_types=["encoder_self"])  # what the model has
    usage = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "usage.md")).read()
    assert f"`LRDropCriterion: {loss.describe()}`" in usage  # the docs' example is lr_drop's default line
    options = dict(consistency_layers="0,-1", layer_reduction="sum", consistency_warmup_updates=100)
    loss.setup_consistency({"kl_loss": ("--kl-weight", 5.0)}, hidden_site="layer", attn_weight=0.0, **options)
    assert loss.describe() == (
        "consistency terms: --kl-weight 5; --hidden-weight 1 (mse at --hidden-site layer); --attn-weight 0 (off); "
        "layers 0,-1 (sum over layers); each weight raised from 0 over 100 updates"
    )
    # one flag weighing two heads' terms is said once; R-Drop alone records no layers
    weight = ("--kl-weight", 0.5)
    loss.setup_consistency({"kl_loss": weight, "prediction_mse_loss": weight}, hidden_weight=0.0, attn_weight=0.0)
    assert loss.describe() == "consistency terms: --kl-weight 0.5; --hidden-weight 0 (off); --attn-weight 0 (off)"


def _documented_defaults(table):
    import re

    documented = {}
    for row in table.splitlines()[2:]:
        flag, default = (c.strip() for c in row.strip("|").split("|")[:2])
        if re.fullmatch(r"`--[a-z-]+`", flag):
            documented[flag.strip("`")[2:].replace("-", "_")] = default.replace("*", "").replace("`", "").split(" ")[0]
    return documented


@pytest.mark.parametrize("doc, heading", [("docs/usage.md", "## Flags of `--criterion lr_drop`"),
                                          ("README.md", "## The flags people change")])  # fmt: skip
def test_the_flag_tables_give_lr_drops_own_defaults(doc, heading):
    """docs/usage.md's table of every flag, and the README's of the handful people change, state
    each default as lr_drop has it (the core's options and the output KL's weight): a changed
    default changes the docs too."""
    import dataclasses
    import re

    from lrdrop_fairseq.criterions.lr_drop import LRDropConfig

    text = open(os.path.join(os.path.dirname(__file__), "..", "..", doc)).read()
    table = text.split(heading)[1].split("\n\n")[1]
    documented = _documented_defaults(table)
    if doc == "README.md":
        assert {"kl_weight", "hidden_weight", "attn_weight", "hidden_loss", "attn_loss"} <= set(documented)
    else:
        assert set(DEFAULTS) | {"kl_weight"} <= set(documented)
    _check_defaults(documented, table, LRDropConfig, dataclasses, re)


def _check_defaults(documented, table, LRDropConfig, dataclasses, re):
    documented = dict(documented)
    fields = {f.name: f.default for f in dataclasses.fields(LRDropConfig)}
    assert fields["hidden_weight"] is None  # by site: the row lists each site's
    cell = re.search(r"\| `--hidden-weight` \| ([^|]*) \|", table).group(1)
    assert dict((site, float(w)) for w, site in re.findall(r"([\d.]+) \(`(\w+)`\)", cell)) == HIDDEN_WEIGHT_BY_SITE
    del documented["hidden_weight"]
    for name, text in documented.items():
        value = fields[name]
        if isinstance(value, bool):
            assert text == ("on" if value else "off"), name
        elif isinstance(value, (int, float)):
            assert float(text) == value, name
        else:
            assert text == value, name


def test_parse_layers():
    from lrdrop.options import parse_layers

    assert parse_layers("all") is None and parse_layers(" ALL ") is None
    assert parse_layers("Last") == (-1,)
    assert parse_layers("0,2,-1") == (0, 2, -1) and parse_layers("1,") == (1,)
    for bad in ("", "first", "1,x"):
        with pytest.raises(ValueError, match="--consistency-layers"):
            parse_layers(bad)


def test_parse_attn_types():
    from lrdrop.options import parse_attn_types
    from lrdrop.records import ATTN_TYPES

    assert parse_attn_types(" All ") == ATTN_TYPES
    assert parse_attn_types("Encoder_Self, decoder_self,") == ("encoder_self", "decoder_self")
    for bad in ("", "cross", "encoder_self,cross"):
        with pytest.raises(ValueError, match="--attn-types"):
            parse_attn_types(bad)


def test_record_spec_selects_the_named_layers():
    """--consistency-layers' indices as Python's, normalised, sorted, each once; out of range is an error."""
    from lrdrop.records import RecordSpec

    assert RecordSpec().select(4) == [0, 1, 2, 3]
    assert RecordSpec(layers=(1,)).select(4) == [1]
    assert RecordSpec(layers=(-1,)).select(4) == [3]
    assert RecordSpec(layers=(3, 0, -1, -4)).select(4) == [0, 3]
    assert RecordSpec(layers=(2, -3)).select(4) == [1, 2]
    for bad in (4, -5):
        with pytest.raises(IndexError, match=f"names layer {bad}, but the model has 4 layers"):
            RecordSpec(layers=(bad,)).select(4)
