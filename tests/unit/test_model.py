"""transformer_lrdrop: same parameters and outputs as fairseq's transformer, plus records."""

import pytest
import torch
from helpers import build, first_batch

from lrdrop.records import ATTN_TYPES, SMALL_MAP, RecordSpec


def _doubled(sample):
    return {k: torch.cat([v, v]) for k, v in sample["net_input"].items()}


def test_no_new_parameters_and_identical_outputs(toy_data):
    task, lr_model, _ = build(toy_data)
    _, plain, _ = build(toy_data, arch="transformer_tiny", criterion="label_smoothed_cross_entropy")
    assert list(lr_model.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(lr_model.state_dict())
    sample = first_batch(task)
    lr_model.eval(), plain.eval()
    with torch.no_grad():
        a = lr_model(**sample["net_input"])[0]
        b = plain(**sample["net_input"])[0]
    assert torch.equal(a, b)


def test_records_shapes_masks_and_rows(toy_data):
    task, model, _ = build(toy_data, dropout=0.0)
    model.train()
    sample = first_batch(task)
    B, S = sample["net_input"]["src_tokens"].shape
    T = sample["target"].size(1)
    out = model(**_doubled(sample), lrdrop_record=RecordSpec())
    rec = out[1]["lrdrop"]
    assert len(rec["encoder_states"]) == 2 and len(rec["decoder_states"]) == 2
    assert rec["encoder_states"][0].shape == (S, 2 * B, 16)
    assert rec["decoder_states"][0].shape == (T, 2 * B, 16)
    shapes = {"encoder_self": (2, 2 * B, S, S), "decoder_self": (2, 2 * B, T, T), "encoder_decoder": (2, 2 * B, T, S)}
    src_pad = sample["net_input"]["src_tokens"].eq(task.src_dict.pad())
    tgt_pad = sample["net_input"]["prev_output_tokens"].eq(task.tgt_dict.pad())
    assert src_pad.any() and tgt_pad.any(), "the batch must contain padding for this test to mean anything"
    key_pad = {"encoder_self": src_pad, "decoder_self": tgt_pad, "encoder_decoder": src_pad}
    for t in ATTN_TYPES:
        assert len(rec["attn"][t]) == 2
        for a in (r.probs() for r in rec["attn"][t]):
            assert a.shape == shapes[t] and a.dtype == torch.float32
            torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)))
            kp = torch.cat([key_pad[t], key_pad[t]])  # (2B, Tk)
            assert (a.masked_select(kp[None, :, None, :].expand_as(a)) == 0).all(), f"{t}: padded keys not 0"
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    assert (rec["attn"]["decoder_self"][0].probs()[..., causal] == 0).all()
    # dropout 0: the two halves are identical
    for a in (r.probs() for r in rec["attn"]["encoder_decoder"]):
        torch.testing.assert_close(a[:, :B], a[:, B:])
    # records are cleared afterwards and plain forwards record nothing
    assert all(m.recorded is None and not m.record_weights for m in model.modules() if hasattr(m, "record_weights"))
    assert "lrdrop" not in model(**_doubled(sample))[1]


def test_layer_and_type_selection(toy_data):
    task, model, _ = build(toy_data)
    model.train()
    sample = first_batch(task)
    rec = model(**_doubled(sample), lrdrop_record=RecordSpec(hidden=False, attn_types=("decoder_self",), layers=(-1,)))[
        1
    ]["lrdrop"]
    assert list(rec["attn"]) == ["decoder_self"] and len(rec["attn"]["decoder_self"]) == 1
    assert "encoder_states" not in rec
    # only the last decoder layer's self-attention recorded
    mods = model.lrdrop_attention_modules(RecordSpec(attn_types=("decoder_self",), layers=(-1,)))
    assert mods["decoder_self"][0] is model.decoder.layers[1].self_attn


def test_generation_with_lrdrop_arch_equals_plain(toy_data):
    from fairseq.sequence_generator import SequenceGenerator

    task, lr_model, _ = build(toy_data)
    _, plain, _ = build(toy_data, arch="transformer_tiny", criterion="label_smoothed_cross_entropy")
    plain.load_state_dict(lr_model.state_dict())
    sample = first_batch(task)
    outs = []
    for m in (lr_model, plain):
        m.eval()
        gen = SequenceGenerator([m], task.tgt_dict, beam_size=3, max_len_b=10)
        outs.append([h[0]["tokens"].tolist() for h in gen.generate([m], sample)])
    assert outs[0] == outs[1]


@pytest.mark.parametrize("small_map", [0, SMALL_MAP], ids=["recomputed", "recorded"])
def test_recorded_probabilities_are_fairseqs_explicit_path(toy_data, small_map):
    """Each record's probs() against fairseq's own explicit attention path on the same inputs
    (per-head, pre-dropout): padded keys, the causal mask and cross-attention included; both
    for maps the term recomputes (large) and maps the module records (small)."""
    from fairseq.modules.multihead_attention import MultiheadAttention

    task, model, _ = build(toy_data)
    model.train()
    sample = first_batch(task)
    torch.manual_seed(0)
    rec = model(**_doubled(sample), lrdrop_record=RecordSpec(small_map=small_map))[1]["lrdrop"]
    for t, records in rec["attn"].items():
        for r in records:
            # encoder-decoder maps are fairseq's own (its explicit path, static_kv) at any size
            assert (r.maps is None) == (small_map == 0 and t != "encoder_decoder")
            module = MultiheadAttention.__new__(MultiheadAttention)  # fairseq's forward, this module's weights
            layer_attn = next(m for m in model.modules() if getattr(m, "q_proj", None) is not None
                              and m.q_proj.weight is r.q_weight)  # fmt: skip
            module.__dict__ = {**layer_attn.__dict__, "skip_embed_dim_check": True}
            module.__class__ = MultiheadAttention
            module.eval()  # no attention dropout: fairseq's weights are pre-dropout anyway
            _, fairseq_probs = module(
                r.query, r.key, r.key, key_padding_mask=r.key_padding_mask, attn_mask=r.attn_mask,
                static_kv=(t == "encoder_decoder"), need_head_weights=True,
            )  # fmt: skip
            torch.testing.assert_close(r.probs(), fairseq_probs, rtol=1e-5, atol=1e-6)


def test_recording_leaves_the_models_output_unchanged(toy_data):
    """Where the term recomputes the maps, recording keeps references only: with the same dropout
    masks the output is bit-identical to fairseq's own forward (torch's fused attention where
    fairseq uses it). Where maps are small, fairseq's explicit path gives the same output up to
    rounding."""
    task, model, _ = build(toy_data)
    model.train()
    sample = first_batch(task)
    torch.manual_seed(5)
    plain, plain_extra = model(**_doubled(sample))
    torch.manual_seed(5)
    small, small_extra = model(**_doubled(sample), lrdrop_record=RecordSpec())
    torch.testing.assert_close(small, plain, rtol=1e-4, atol=1e-5)
    # and the alignment the decoder returns (its last layer's encoder-decoder attention, averaged
    # over heads: what --print-alignment reads) is fairseq's too
    assert plain_extra["attn"][0].shape == small_extra["attn"][0].shape
    torch.testing.assert_close(small_extra["attn"][0], plain_extra["attn"][0], rtol=1e-4, atol=1e-5)
    torch.manual_seed(5)
    recomputed = model(**_doubled(sample), lrdrop_record=RecordSpec(small_map=0))[0]
    assert torch.equal(plain, recomputed)


@pytest.mark.parametrize("extra", [{"add_bias_kv": True}, {"add_zero_attn": True}])
def test_attention_with_extra_keys_is_refused_while_recording(extra):
    """--add-bias-kv / --add-zero-attn append keys the recorded projections cannot rebuild: either
    one alone is refused when recording, and the module runs as fairseq's when not."""
    from lrdrop_fairseq.models.recording import RecordingMultiheadAttention

    m = RecordingMultiheadAttention(8, 2, self_attention=True, **extra)
    x = torch.randn(3, 2, 8)
    m(x, x, x)
    m.record_weights = True
    with pytest.raises(RuntimeError, match="--add-bias-kv / --add-zero-attn"):
        m(x, x, x)


def test_a_recorded_forward_leaves_no_hooks_and_no_recording_flags(toy_data):
    """The forward hooks (encoder output, fc2 outputs) and the attention modules' recording flags
    last one forward: a later plain forward records nothing and keeps nothing alive."""
    task, model, _ = build(toy_data)
    model.train()
    sample = first_batch(task)
    model(**_doubled(sample), lrdrop_record=RecordSpec(hidden_site="ffn"))
    hooked = [name for name, m in model.named_modules() if m._forward_hooks]
    assert hooked == []
    assert not any(getattr(m, "record_weights", False) for m in model.modules())
    assert not any(getattr(m, "recorded", None) is not None for m in model.modules())  # no references kept


def test_small_map_threshold_counts_every_map_entry(toy_data):
    """Self-attention keeps its maps when heads x batch x queries x keys <= --attn-small-map, and
    leaves them to the term's recompute path above that; encoder-decoder attention always keeps them."""
    task, model, _ = build(toy_data)
    model.train()
    sample = first_batch(task)
    B, S = sample["net_input"]["src_tokens"].shape
    T = sample["target"].size(1)
    heads = model.encoder.layers[0].self_attn.num_heads
    for small_map, kept in ((heads * 2 * B * S * S, True), (heads * 2 * B * S * S - 1, False)):
        rec = model(**_doubled(sample), lrdrop_record=RecordSpec(small_map=small_map))[1]["lrdrop"]["attn"]
        assert (rec["encoder_self"][0].maps is not None) is kept
        assert (rec["decoder_self"][0].maps is not None) is (heads * 2 * B * T * T <= small_map)
        assert rec["encoder_decoder"][0].maps is not None


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"need_weights": False}, {"need_head_weights": True}, {"need_weights": False, "need_head_weights": True}],
    ids=["defaults", "no-weights", "head-weights", "head-weights-only"],
)
@pytest.mark.parametrize("small_map", [0, SMALL_MAP], ids=["recomputed", "recorded"])
def test_a_recording_module_returns_what_fairseqs_returns(kwargs, small_map):
    """Callers (the decoder's alignment, fairseq's --print-alignment, need_head_weights users) get from a
    recording module exactly the output and weights fairseq's module returns for the same arguments,
    its defaults included: per head, averaged over heads, or none; and the module keeps its maps
    (per head, pre-dropout) whenever they are small, whatever the caller asked for. The reference is
    the path the module takes: fairseq's own forward (its fused kernel, which averages over heads even
    when asked for them per head) with large maps, fairseq's explicit path with small ones."""
    from fairseq.modules.multihead_attention import MultiheadAttention

    from lrdrop_fairseq.models.recording import RecordingMultiheadAttention

    torch.manual_seed(0)
    plain = MultiheadAttention(8, 2, self_attention=True).eval()
    plain.skip_embed_dim_check = bool(small_map)  # True: fairseq's explicit path
    rec = RecordingMultiheadAttention(8, 2, self_attention=True).eval()
    rec.load_state_dict(plain.state_dict())
    x = torch.randn(3, 2, 8)  # (T, B, C)
    pad = torch.tensor([[False, False, False], [False, False, True]])
    want_out, want_weights = plain(x, x, x, key_padding_mask=pad, **kwargs)
    rec.record_weights, rec.small_map = True, small_map
    out, weights = rec(x, x, x, key_padding_mask=pad, **kwargs)
    torch.testing.assert_close(out, want_out, rtol=1e-5, atol=1e-6)
    if want_weights is None:
        assert weights is None
    else:
        assert weights.shape == want_weights.shape
        torch.testing.assert_close(weights, want_weights, rtol=1e-5, atol=1e-6)
    if small_map:
        assert rec.recorded.maps.shape == (2, 2, 3, 3)  # (H, B, T, S) whatever was asked
        torch.testing.assert_close(rec.recorded.maps, rec.recorded.probs(), rtol=1e-5, atol=1e-6)
    else:
        assert rec.recorded.maps is None
