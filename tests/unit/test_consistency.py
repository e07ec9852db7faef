"""The pure loss functions against values computed by hand."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from lrdrop import attention as A
from lrdrop import consistency as C
from lrdrop.records import AttentionInputs

P, Q = [0.5, 0.5], [0.9, 0.1]
# (KL(p||q) + KL(q||p)) / 2, written out
KL_PQ = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
KL_QP = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
SYM = (KL_PQ + KL_QP) / 2


def test_symmetric_kl_hand_value_and_padding():
    lp = torch.log(torch.tensor([P, [0.2, 0.8]]))
    lq = torch.log(torch.tensor([Q, [0.7, 0.3]]))
    pad = torch.tensor([False, True])
    assert C.symmetric_kl_from_log_probs(lp, lq, pad).item() == pytest.approx(0.439445, abs=1e-6)  # = SYM
    # whatever sits at the padded position changes nothing
    lq2 = lq.clone()
    lq2[1] = torch.log(torch.tensor([0.01, 0.99]))
    assert C.symmetric_kl_from_log_probs(lp, lq2, pad).item() == pytest.approx(SYM, rel=1e-6)
    # without the mask the second position counts
    assert C.symmetric_kl_from_log_probs(lp, lq).item() > SYM + 0.1


def test_symmetric_kl_matches_rdrop_kl_div_formulation():
    """(B, T, V) log-probabilities, as the Hugging Face adapter passes them: the last dim is the
    distribution, the padding mask (B, T)."""
    torch.manual_seed(0)
    lp = torch.randn(2, 7, 11).log_softmax(-1)
    lq = torch.randn(2, 7, 11).log_softmax(-1)
    pad = torch.tensor([[0, 0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    # R-Drop's published compute_kl_loss
    p_loss = F.kl_div(lp, lq.exp(), reduction="none").masked_fill(pad[..., None], 0.0).sum()
    q_loss = F.kl_div(lq, lp.exp(), reduction="none").masked_fill(pad[..., None], 0.0).sum()
    ref = (p_loss + q_loss) / 2
    assert C.symmetric_kl_from_log_probs(lp, lq, pad).item() == pytest.approx(ref.item(), rel=1e-5)


def test_output_kl_keeps_only_its_inputs_for_the_backward():
    """The output KL's graph holds nothing but the two log-probability inputs (written out it kept
    four fp32 N x V tensors: exp, exp, their difference, the log difference)."""
    logits = torch.randn(2, 6, 50, requires_grad=True)
    lprobs = logits.log_softmax(-1)
    lp, lq = lprobs.unbind(0)
    saved = []

    def pack(t):
        saved.append(t.untyped_storage().data_ptr())
        return t

    pad = torch.tensor([False, True, False, False, False, False])
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        C.symmetric_kl_from_log_probs(lp, lq, pad)
    # the inputs (views of one log-softmax output) and the padding mask, nothing of its own
    assert set(saved) == {lprobs.untyped_storage().data_ptr(), pad.untyped_storage().data_ptr()}


def test_symmetric_kl_gradients_match_reference():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 5, 9, requires_grad=True)  # two copies of (B, T, V)
    lp, lq = logits.log_softmax(-1).unbind(0)
    C.symmetric_kl_from_log_probs(lp, lq).backward()
    g_fused = logits.grad.clone()
    logits.grad = None
    lp, lq = logits.log_softmax(-1).unbind(0)
    ref = (F.kl_div(lp, lq.exp(), reduction="sum") + F.kl_div(lq, lp.exp(), reduction="sum")) / 2
    ref.backward()
    torch.testing.assert_close(g_fused, logits.grad, rtol=1e-5, atol=1e-7)


def test_hidden_mse_and_cosine_hand_values():
    # (T=3, B=1, C=2); the third token is padding
    h1 = torch.tensor([[[1.0, 2.0]], [[1.0, 0.0]], [[5.0, 5.0]]])
    h2 = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[-5.0, 9.0]]])
    pad = torch.tensor([[False], [False], [True]])
    # mean over C of squared differences: (1 + 4)/2 + 0
    assert C.hidden_consistency(h1, h2, pad, "mse").item() == pytest.approx(2.5)
    a = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]], [[3.0, 3.0]]])
    b = torch.tensor([[[0.0, 1.0]], [[2.0, 2.0]], [[-3.0, 1.0]]])
    # 1 - cos: orthogonal -> 1, parallel -> 0
    assert C.hidden_consistency(a, b, pad, "cosine").item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="unknown hidden loss"):
        C.hidden_consistency(a, b, pad, "l1")


def _attn_pair():
    # (H=2, B=1, Tq=2, Tk=3); key 2 is padding (exact zeros); query 1 is padding
    a1 = torch.tensor([[[[0.5, 0.5, 0.0], [0.3, 0.7, 0.0]]], [[[0.2, 0.8, 0.0], [1.0, 0.0, 0.0]]]])
    a2 = torch.tensor([[[[0.9, 0.1, 0.0], [0.6, 0.4, 0.0]]], [[[0.2, 0.8, 0.0], [0.0, 1.0, 0.0]]]])
    qpad = torch.tensor([[False, True]])
    return a1, a2, qpad


def test_attention_kl_hand_value_masked_keys_no_nan():
    a1, a2, qpad = _attn_pair()
    # head 0, query 0: SYM; head 1 identical rows: 0; mean over heads
    got = C.attention_consistency(a1, a2, qpad, "kl")
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(SYM / 2, rel=1e-6)


def test_attention_mse_hand_value():
    a1, a2, qpad = _attn_pair()
    # head 0, query 0: 0.4^2 + 0.4^2 = 0.32; head 1: 0; mean over heads
    assert C.attention_consistency(a1, a2, qpad, "mse").item() == pytest.approx(0.16, rel=1e-6)


def test_attention_padded_query_rows_change_nothing():
    a1, a2, qpad = _attn_pair()
    ref = C.attention_consistency(a1, a2, qpad).item()
    a2b = a2.clone()
    a2b[:, :, 1] = torch.tensor([0.5, 0.25, 0.25])
    assert C.attention_consistency(a1, a2b, qpad).item() == pytest.approx(ref, rel=1e-7)


def test_attention_gradients_finite_with_zero_entries():
    a1, a2, qpad = _attn_pair()
    a1 = a1.clone().requires_grad_(True)
    a2 = a2.clone().requires_grad_(True)
    C.attention_consistency(a1, a2, qpad, "kl").backward()
    assert torch.isfinite(a1.grad).all() and torch.isfinite(a2.grad).all()
    assert a1.grad.abs().sum() > 0


def test_half_precision_inputs_are_upcast():
    a1, a2, qpad = _attn_pair()
    got = C.attention_consistency(a1.half(), a2.half(), qpad)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(SYM / 2, rel=1e-3)


def test_split():
    x = torch.arange(6).view(6, 1)
    a, b = C.split_halves(x)
    assert a.flatten().tolist() == [0, 1, 2] and b.flatten().tolist() == [3, 4, 5]
    with pytest.raises(ValueError):
        C.split_halves(torch.zeros(3))


def test_double_repeats_tensors_along_the_batch_and_passes_anything_else():
    x = torch.tensor([[1, 2], [3, 4]])
    assert C.double(x).tolist() == [[1, 2], [3, 4], [1, 2], [3, 4]]  # [x; x]: copy 1, then copy 2
    assert C.double(None) is None and C.double(7) == 7


def test_precision_upcast_keeps_float64():
    assert C.at_least_fp32(torch.zeros(1, dtype=torch.float16)).dtype == torch.float32
    assert C.at_least_fp32(torch.zeros(1, dtype=torch.bfloat16)).dtype == torch.float32
    assert C.at_least_fp32(torch.zeros(1, dtype=torch.float64)).dtype == torch.float64  # finite differences


def test_squared_difference_hand_value():
    """A regression head's consistency: summed over sentences and outputs, in fp32 for fp16 inputs."""
    y1, y2 = torch.tensor([[1.0], [2.0], [0.5]]), torch.tensor([[0.0], [4.0], [0.5]])
    assert C.squared_difference(y1, y2).item() == 5.0  # 1 + 4 + 0
    got = C.squared_difference(y1.half(), y2.half())
    assert got.dtype == torch.float32 and got.shape == () and got.item() == 5.0


def test_layer_terms_take_recorded_maps_when_present_and_recompute_otherwise():
    """An attention record with maps (a module that computed them anyway) is scored on those maps;
    one without is recomputed from its inputs. Recorded maps that differ from the inputs' show which
    path ran."""
    units = torch.tensor([4.0, 3.0])
    # encoder-decoder attention: 5 target queries over 6 source keys (the weights go by the queries)
    pads = {"decoder": torch.tensor([[False] * 5, [False, False, False, True, True]])}

    def term(record):
        return C.layer_terms({"attn": {"encoder_decoder": [record]}}, pads, units)["attn_loss"]

    inputs = _attention_inputs(tq=5, tk=6)
    recomputed = term(inputs)
    torch.testing.assert_close(recomputed, term(inputs.probs()))  # the same maps, either way
    other = _attention_inputs(seed=1, tq=5, tk=6).probs().detach()
    with_maps = dataclasses.replace(_attention_inputs(tq=5, tk=6), maps=other)
    torch.testing.assert_close(term(with_maps), term(other))
    assert abs(term(with_maps).item() - recomputed.item()) > 1e-3
    pads.clear()  # no padding: each sentence's mean over its 5 queries, whichever path
    torch.testing.assert_close(term(inputs), term(inputs.probs()))
    per_query = 0.5 * A._sym_kl_rows(*C.split_halves(inputs.probs(), 1)).mean(0)  # (B, Tq): sym KL, heads averaged
    torch.testing.assert_close(term(inputs.probs()), (per_query.mean(1) * units).sum(), rtol=1e-5, atol=1e-6)


def test_combine_layers_mean_and_sum():
    per_layer = [torch.tensor(1.0), torch.tensor(2.0), torch.tensor(6.0)]
    assert C.combine_layers(per_layer, "mean").item() == 3.0
    assert C.combine_layers(per_layer, "sum").item() == 9.0  # = mean x 3 layers
    assert C.combine_layers([], "sum") is None
    with pytest.raises(ValueError, match="layer reduction"):
        C.combine_layers(per_layer, "max")


def _unequal_sides():
    """Source: 3 positions, the last a pad; target: 1 position. One copy per half (B=1)."""
    h_src = torch.zeros(3, 2, 1)  # (S, 2B, C); copy 1 all zeros
    h_src[:, 1, 0] = torch.tensor([1.0, 2.0, 9.0])  # squared differences 1, 4 and 81 at the pad
    h_tgt = torch.zeros(1, 2, 1)
    h_tgt[0, 1, 0] = 3.0  # 9
    enc_self = torch.zeros(1, 2, 3, 3)  # (H, 2B, Sq, Sk)
    enc_self[..., 0] = 1.0
    enc_self[0, 1, 0] = torch.tensor([0.0, 1.0, 0.0])  # query 0: squared difference 2
    enc_self[0, 1, 2] = torch.tensor([0.0, 0.0, 1.0])  # the pad query: 2, must not count
    cross = torch.zeros(1, 2, 1, 3)  # (H, 2B, T, S)
    cross[..., 0] = 1.0
    cross[0, 1, 0] = torch.tensor([0.5, 0.5, 0.0])  # 0.25 + 0.25
    records = {
        "encoder_states": [h_src],
        "decoder_states": [h_tgt],
        "attn": {"encoder_self": [enc_self], "encoder_decoder": [cross]},
    }
    pads = {"encoder": torch.tensor([[False, False, True]]), "decoder": torch.tensor([[False]])}
    return records, pads


def test_layer_terms_are_each_sides_mean_per_sentence_times_its_units():
    records, pads = _unequal_sides()
    terms = C.layer_terms(records, pads, torch.tensor([1]), hidden_loss="mse", attn_loss="mse")
    # hidden: encoder layer (1 + 4) / 2 source tokens, decoder layer 9 / 1 target token; mean over layers.
    # Token sums over one shared count would give (5 + 9) / 2 = 7 instead.
    assert terms["hidden_loss"].item() == pytest.approx((2.5 + 9.0) / 2)
    # attention: encoder self 2 / 2 source queries, encoder-decoder 0.5 / 1 target query; mean over types
    assert terms["attn_loss"].item() == pytest.approx((1.0 + 0.5) / 2)
    # a sentence counted 3 times (3 target tokens) weighs 3 times
    tripled = C.layer_terms(records, pads, torch.tensor([3]), hidden_loss="mse", attn_loss="mse")
    assert tripled["hidden_loss"].item() == pytest.approx(3 * (2.5 + 9.0) / 2)


def test_layer_terms_do_not_change_when_a_side_is_repeated():
    """A weight means the same at any length: the same per-token distances over a source three
    times as long give the same terms."""
    records, pads = _unequal_sides()
    ref = C.layer_terms(records, pads, torch.tensor([1]), hidden_loss="mse", attn_loss="mse")
    h_src = records["encoder_states"][0][:2]  # the two real source positions
    longer = {**records, "encoder_states": [h_src.repeat(3, 1, 1)], "attn": {}}
    got = C.layer_terms(longer, {"encoder": None, "decoder": pads["decoder"]}, torch.tensor([1]), hidden_loss="mse")
    assert got["hidden_loss"].item() == pytest.approx(ref["hidden_loss"].item())
    assert "attn_loss" not in got


def test_layer_terms_all_pad_side_is_zero_not_nan():
    records, _ = _unequal_sides()
    all_pad = {"encoder": torch.tensor([[True, True, True]]), "decoder": torch.tensor([[True]])}
    terms = C.layer_terms(records, all_pad, torch.tensor([0]), hidden_loss="mse", attn_loss="kl")
    assert terms["hidden_loss"].item() == 0.0 and terms["attn_loss"].item() == 0.0


def _two_sentences():
    """Sentence 1: source 2 tokens (squared differences 1 and 3), target 1 token (4); sentence 2:
    source 1 token (6) and a pad (100, must not count), target 3 tokens (1, 1, 4). Encoder
    self-attention: sentence 1's queries differ by 2 and 0, sentence 2's one query by 4."""
    h_src = torch.zeros(2, 4, 1)  # (S, 2B, C); copy 1 all zeros
    h_src[:, 2, 0] = torch.tensor([1.0, 3.0]).sqrt()
    h_src[:, 3, 0] = torch.tensor([6.0, 100.0]).sqrt()
    h_tgt = torch.zeros(3, 4, 1)
    h_tgt[:, 2, 0] = torch.tensor([4.0, 50.0, 50.0]).sqrt()  # positions 1-2 of sentence 1 are pads
    h_tgt[:, 3, 0] = torch.tensor([1.0, 1.0, 4.0]).sqrt()
    enc = torch.zeros(1, 4, 2, 2)  # (H, 2B, Sq, Sk)
    enc[..., 0] = 1.0
    enc[0, 2, 0] = torch.tensor([0.0, 1.0])  # sentence 1, query 0: squared difference 2
    enc[0, 3, 0] = torch.tensor([1.0, 2.0])  # sentence 2, query 0: 0 + 4 (mse needs no distribution)
    enc[0, 3, 1] = torch.tensor([0.0, 1.0])  # sentence 2's pad query: must not count
    records = {"encoder_states": [h_src], "decoder_states": [h_tgt], "attn": {"encoder_self": [enc]}}
    pads = {
        "encoder": torch.tensor([[False, False], [False, True]]),
        "decoder": torch.tensor([[False, True, True], [False, False, False]]),
    }
    return records, pads, torch.tensor([1, 3])  # units: each sentence's target tokens


def _one_sentence(records, pads, units, b):
    """Sentence ``b`` of a doubled batch alone (B=1), as a micro-batch of its own."""
    B = units.shape[0]

    def pick(x, dim):
        return torch.cat([x.narrow(dim, b, 1), x.narrow(dim, B + b, 1)], dim)

    return (
        {
            "encoder_states": [pick(h, 1) for h in records["encoder_states"]],
            "decoder_states": [pick(h, 1) for h in records["decoder_states"]],
            "attn": {t: [pick(a, 1) for a in maps] for t, maps in records["attn"].items()},
        },
        {side: m[b : b + 1] for side, m in pads.items()},
        units[b : b + 1],
    )


def test_layer_terms_of_a_batch_are_the_sum_of_its_micro_batches():
    """--update-freq and data-parallel ranks: fairseq sums the micro-batches' losses and divides
    once by the summed sample_size, so the terms must be sums over sentences. Two sentences
    with opposite source/target ratios (2:1 and 1:3), by hand: encoder per sentence 2 and 6,
    decoder 4 and 2, counted 1 and 3 times."""
    records, pads, units = _two_sentences()
    both = C.layer_terms(records, pads, units, hidden_loss="mse", attn_loss="mse")
    encoder, decoder = 1 * 2.0 + 3 * 6.0, 1 * 4.0 + 3 * 2.0
    assert both["hidden_loss"].item() == pytest.approx((encoder + decoder) / 2)  # mean over the two layers
    assert both["attn_loss"].item() == pytest.approx(1 * (2.0 + 0.0) / 2 + 3 * 4.0)
    # a per-token mean of the batch's sides times its target tokens (the code before 2026-12-05)
    # would give 4 * 10/3 for the encoder: not additive over micro-batches
    parts = [C.layer_terms(*_one_sentence(records, pads, units, b), hidden_loss="mse", attn_loss="mse") for b in (0, 1)]
    for term in ("hidden_loss", "attn_loss"):
        assert (parts[0][term] + parts[1][term]).item() == pytest.approx(both[term].item())


def test_layer_terms_add_up_over_micro_batches_on_the_recompute_path():
    """The blockwise recompute path of large maps weighs its queries as the explicit path does."""
    g = torch.Generator().manual_seed(0)
    B, S, C_, H = 3, 5, 8, 2
    query = torch.randn(S, 2 * B, C_, generator=g)
    w = torch.randn(C_, C_, generator=g)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True], [False] * 4 + [True]])
    key_padding = torch.cat([pad, pad])
    inputs = AttentionInputs(query=query, key=query, q_weight=w, k_weight=w, q_bias=None, k_bias=None,
                             num_heads=H, scaling=C_**-0.5, key_padding_mask=key_padding)  # fmt: skip
    units = torch.tensor([2.0, 7.0, 1.0])
    weights = C.token_weights(pad, units, S)
    recomputed = C.recomputed_attention_consistency(inputs, pad, "kl", block=2, weights=weights)
    explicit = C.attention_consistency(*C.split_halves(inputs.probs(), 1), pad, "kl", weights)
    torch.testing.assert_close(recomputed, explicit, rtol=1e-5, atol=1e-6)
    per_sentence = []
    for b in range(B):
        rows = [b, B + b]
        one = dataclasses.replace(inputs, query=query[:, rows], key=query[:, rows], key_padding_mask=key_padding[rows])
        part = C.recomputed_attention_consistency(one, pad[b : b + 1], "kl", block=2, weights=weights[b : b + 1])
        per_sentence.append(part)
    torch.testing.assert_close(sum(per_sentence), recomputed, rtol=1e-5, atol=1e-6)


def _written_out_sym_kl(p, q):
    """The term as autograd would keep it: the reference for the lean function."""
    p, q = p.float(), q.float()
    return ((p - q) * (p.clamp_min(A._TINY).log() - q.clamp_min(A._TINY).log())).sum(-1)


def _padded_maps(dtype=torch.float32, seed=0):
    """(H=3, B=2, Tq=4, Tk=5) attention rows with the last two keys masked (exact zeros), a
    causal zero in the first row, and a row equal in both copies."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 2, 4, 5, generator=g)
    logits[..., 3:] = float("-inf")
    logits[..., 0, 1] = float("-inf")
    p, q = logits.softmax(-1).to(dtype).unbind(0)
    q[:, 1, 2] = p[:, 1, 2]
    return p.clone().requires_grad_(True), q.clone().requires_grad_(True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_lean_sym_kl_equals_written_out_values_and_gradients(dtype):
    p, q = _padded_maps(dtype)
    weights = torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(1))  # a non-uniform upstream gradient
    (A._sym_kl_rows(p, q) * weights).sum().backward()
    lean = p.grad.clone(), q.grad.clone()
    p2, q2 = _padded_maps(dtype)
    (_written_out_sym_kl(p2, q2) * weights).sum().backward()
    torch.testing.assert_close(A._sym_kl_rows(p, q), _written_out_sym_kl(p2, q2), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(lean[0], p2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lean[1], q2.grad, rtol=1e-5, atol=1e-6)
    assert lean[0].dtype == dtype and torch.isfinite(lean[0]).all()
    assert (lean[0][..., 3:] == 0).all()  # masked keys get no gradient


def test_lean_sym_kl_keeps_only_its_inputs_for_the_backward():
    """What the graph holds until the backward: the lean term saves p and q themselves (no
    storage of its own); written out it keeps fp32 maps of its own."""
    p, q = _padded_maps()

    def saved_storages(fn):
        storages = []

        def pack(t):
            storages.append(t.untyped_storage().data_ptr())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(p, q)
        return set(storages)

    inputs = {p.untyped_storage().data_ptr(), q.untyped_storage().data_ptr()}
    assert saved_storages(A._sym_kl_rows) == inputs
    assert saved_storages(_written_out_sym_kl) - inputs  # the written-out version holds more


def _assert_close_grad(got, ref):
    """Gradients through fp32 softmaxes (the maps' precision, as fairseq's): an element is off by
    the rounding of the largest (a few 1e-7 of it), not of its own, so the absolute tolerance
    scales with the largest; a wrong term is off by its own size."""
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6 * max(1.0, ref.abs().max().item()))


def _attention_inputs(seed=0, tq=5, tk=6, b2=4, heads=2, dim=8, causal=False):
    g = torch.Generator().manual_seed(seed)
    leaf = lambda *shape: torch.randn(*shape, generator=g).requires_grad_(True)  # noqa: E731
    pad = torch.zeros(b2, tk, dtype=torch.bool)
    padded = slice(-2, None) if causal else slice(0, 2)  # targets are right-padded, sources left-padded
    pad[1, padded] = True  # in one sentence of each copy
    pad[1 + b2 // 2, padded] = True
    mask = torch.triu(torch.full((tq, tk), float("-inf")), 1) if causal else None
    return AttentionInputs(
        query=leaf(tq, b2, dim), key=leaf(tk, b2, dim), q_weight=leaf(dim, dim), q_bias=leaf(dim),
        k_weight=leaf(dim, dim), k_bias=leaf(dim), num_heads=heads, scaling=(dim // heads) ** -0.5,
        key_padding_mask=pad, attn_mask=mask,
    )  # fmt: skip


@pytest.mark.parametrize("in_backward", [False, True], ids=["gradient-in-forward", "maps-again-in-backward"])
@pytest.mark.parametrize("loss", A.ATTN_LOSSES)
@pytest.mark.parametrize("causal", [False, True])
def test_recomputed_term_in_blocks_equals_the_term_of_the_full_maps(loss, causal, in_backward):
    """Blocks of 2 queries: the same value and the same gradients for every input (query, key,
    both projections) as the term of the whole maps computed at once, whether the gradient is
    computed in the forward or the maps again in the backward; and the same sharpness figure."""
    qpad = torch.zeros(2, 5, dtype=torch.bool)
    qpad[0, -1] = True
    leaves = lambda r: (r.query, r.key, r.q_weight, r.q_bias, r.k_weight, r.k_bias)  # noqa: E731
    full = _attention_inputs(causal=causal, tk=5 if causal else 6)
    ref = C.attention_consistency(*C.split_halves(full.probs(), 1), qpad, loss)
    ref_grads = torch.autograd.grad(ref, leaves(full))
    blocked = _attention_inputs(causal=causal, tk=5 if causal else 6)
    got, sharp = C.recomputed_attention_consistency(blocked, qpad, loss, block=2, in_backward=in_backward,
                                                    sharpness=True)  # fmt: skip
    p1 = C.split_halves(full.probs(), 1)[0]
    torch.testing.assert_close(sharp, A.score_sd_sum(p1, qpad), rtol=1e-5, atol=1e-6)
    assert sharp[1].item() == 2 * 9  # heads x the first copy's real queries
    whole = _attention_inputs(causal=causal, tk=5 if causal else 6)  # the default: one block here
    whole_term = C.recomputed_attention_consistency(whole, qpad, loss, in_backward=in_backward)
    torch.testing.assert_close(whole_term, ref, rtol=1e-6, atol=1e-7)
    got_grads = torch.autograd.grad(got, leaves(blocked))
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-7)
    assert ref.item() > 0
    for g, r in zip(got_grads, ref_grads):
        _assert_close_grad(g, r)


def test_map_block_sets_how_many_queries_each_block_computes(monkeypatch):
    """``map_block`` map entries per block: with H=2, 2B=4, Tk=6 a query row has 48 entries."""
    seen = []
    probs = AttentionInputs.probs

    def spy(self, rows=slice(None), keys=None):
        seen.append((rows.start, rows.stop))
        return probs(self, rows, keys)

    monkeypatch.setattr(AttentionInputs, "probs", spy)
    C.recomputed_attention_consistency(_attention_inputs(tq=5, tk=6), None, "kl", map_block=2 * 48)
    assert seen == [(0, 2), (2, 4), (4, 6)]
    seen.clear()
    C.recomputed_attention_consistency(_attention_inputs(tq=5, tk=6), None, "kl", map_block=47)
    assert seen == [(q, q + 1) for q in range(5)]  # never fewer than one query


@pytest.mark.parametrize("in_backward", [False, True], ids=["gradient-in-forward", "maps-again-in-backward"])
def test_frozen_projections_get_no_gradient_and_the_rest_theirs(in_backward):
    """A frozen key projection and query bias (fine-tuning part of a model): no gradient for them,
    the same gradients as the full maps' term for the rest."""
    qpad = torch.zeros(2, 5, dtype=torch.bool)
    qpad[1, -1] = True

    def frozen():
        r = _attention_inputs(tk=6)
        for t in (r.k_weight, r.k_bias, r.q_bias):
            t.requires_grad_(False)
        return r

    ref_in, got_in = frozen(), frozen()
    trained = lambda r: (r.query, r.key, r.q_weight)  # noqa: E731
    ref = C.attention_consistency(*C.split_halves(ref_in.probs(), 1), qpad, "kl")
    got = C.recomputed_attention_consistency(got_in, qpad, "kl", block=2, in_backward=in_backward)
    got.backward()
    ref.backward()
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-7)
    for g, r in zip(trained(got_in), trained(ref_in)):
        _assert_close_grad(g.grad, r.grad)
    assert got_in.k_weight.grad is None and got_in.q_bias.grad is None


@pytest.mark.parametrize("in_backward", [False, True], ids=["gradient-in-forward", "maps-again-in-backward"])
def test_score_bias_is_added_and_gets_its_gradient(in_backward):
    """T5's relative position bias, (1, H, Tq, Tk) added to every copy's scores: the probabilities
    are softmax(q k^T * scaling + bias) by hand, and the recomputed term gives the bias (and every
    other input) the gradient autograd gives through the full maps."""
    inputs = _attention_inputs(causal=True, tk=5)
    bias = torch.randn(1, 2, 5, 5, generator=torch.Generator().manual_seed(4)).requires_grad_(True)
    inputs = dataclasses.replace(inputs, score_bias=bias, key_padding_mask=None)
    q = F.linear(inputs.query, inputs.q_weight, inputs.q_bias).view(5, 4, 2, 4).permute(2, 1, 0, 3)
    k = F.linear(inputs.key, inputs.k_weight, inputs.k_bias).view(5, 4, 2, 4).permute(2, 1, 0, 3)
    scores = q @ k.transpose(-1, -2) * inputs.scaling + bias[0][:, None] + inputs.attn_mask
    torch.testing.assert_close(inputs.probs(), scores.softmax(-1))
    leaves = (bias, inputs.query, inputs.key, inputs.q_weight, inputs.k_weight)
    ref = C.attention_consistency(*C.split_halves(inputs.probs(), 1), None, "kl")
    ref_grads = torch.autograd.grad(ref, leaves)
    got = C.recomputed_attention_consistency(inputs, None, "kl", block=2, in_backward=in_backward)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-7)
    assert ref_grads[0].abs().sum() > 0
    for g, r in zip(torch.autograd.grad(got, leaves), ref_grads):
        _assert_close_grad(g, r)


def test_finite_masks_make_a_fully_masked_row_uniform_not_nan():
    """Left-padded targets under a causal mask leave a query with no visible key: with -inf that
    row is NaN (and a NaN times a pad's zero weight is still NaN in the gradient); Hugging Face
    models mask with the lowest finite value, which makes it uniform, and so does finite_masks."""
    inputs = _attention_inputs(causal=True, tk=5)
    pad = torch.zeros(4, 5, dtype=torch.bool)
    pad[1, :2] = pad[3, :2] = True  # left padding: query 0 of sentence 1 sees only padded keys
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)  # bool: True = masked
    inputs = dataclasses.replace(inputs, key_padding_mask=pad, attn_mask=causal)
    assert inputs.probs()[:, 1, 0].isnan().all()
    finite = dataclasses.replace(inputs, finite_masks=True)
    torch.testing.assert_close(finite.probs()[:, 1, 0], torch.full((2, 5), 0.2))
    qpad = pad[:2]  # those queries are pads themselves
    term = C.recomputed_attention_consistency(finite, qpad, "kl", block=2, in_backward=True)
    grads = torch.autograd.grad(term, (finite.query, finite.q_weight))
    assert term.isfinite() and all(g.isfinite().all() for g in grads)


def test_maps_again_in_backward_keep_nothing_but_the_inputs():
    """The deferred path keeps only its inputs (the model's graph keeps them anyway) until the
    backward: no gradient, no map; the path that computes the gradient in the forward keeps the
    input-sized gradients (fp32 copies) instead."""
    inputs = _attention_inputs(tq=6, tk=6)
    inputs = dataclasses.replace(inputs, key=inputs.query)
    ptrs = {t.data_ptr() for t in (inputs.query, inputs.q_weight, inputs.q_bias, inputs.k_weight, inputs.k_bias)}

    def kept(in_backward):  # what the term's node holds until the backward
        term = C.recomputed_attention_consistency(inputs, None, "kl", block=2, in_backward=in_backward)
        return term.grad_fn.saved_tensors

    deferred = kept(True)
    assert len(deferred) == 5 and all(t.data_ptr() in ptrs for t in deferred)
    eager = kept(False)  # gradients: new tensors
    assert len(eager) == 5 and not any(t.data_ptr() in ptrs for t in eager)


def test_recorded_probabilities_mask_keys_and_future():
    probs = _attention_inputs(causal=True, tk=5).probs()  # (H, 2B, Tq, Tk)
    torch.testing.assert_close(probs.sum(-1), torch.ones_like(probs.sum(-1)))
    assert (probs[:, 1, :, -2:] == 0).all()  # padded keys
    assert (probs[..., torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)] == 0).all()  # the future


def _converged_halves(dtype, noise):
    """Self-attention inputs (fp16 or fp32 copies of the same values) whose two halves differ by
    ``noise``: as the two sub-models converge, the attention KL per query falls to ~1e-6."""
    g = torch.Generator().manual_seed(3)
    tq, b, dim, heads = 16, 2, 32, 4
    half = torch.randn(tq, b, dim, generator=g)
    query = torch.cat([half, half + noise * torch.randn(tq, b, dim, generator=g)], 1)
    weights = [torch.randn(dim, dim, generator=g) / dim**0.5 for _ in range(2)]
    leaf = lambda t: t.half().to(dtype).requires_grad_(True)  # noqa: E731  (the same fp16 values in both)
    return AttentionInputs(
        query=leaf(query), key=None, q_weight=leaf(weights[0]), q_bias=None, k_weight=leaf(weights[1]),
        k_bias=None, num_heads=heads, scaling=(dim // heads) ** -0.5,
    )  # fmt: skip


@pytest.mark.parametrize("in_backward", [False, True], ids=["gradient-in-forward", "maps-again-in-backward"])
@pytest.mark.parametrize("noise", [3e-3, 3e-2])
def test_recomputed_term_in_fp16_has_the_fp32_gradient(noise, in_backward):
    """The recompute path under --fp16: its gradient is computed inside the forward, before any
    loss scale exists, so it must not be computed in fp16 (there the q_proj gradient was 124% off
    the fp32 one as the halves converged). Backward here as fairseq's FP16 optimizer does it: the
    term times a loss scale, the fp16 gradients divided by it in fp32."""
    scale = 2.0**12

    def term_and_grads(dtype):
        inputs = _converged_halves(dtype, noise)
        inputs = dataclasses.replace(inputs, key=inputs.query)  # self-attention: one tensor
        term = C.recomputed_attention_consistency(inputs, None, "kl", block=4, in_backward=in_backward)
        (term * scale).backward()
        return term, [t.grad.float() / scale for t in (inputs.q_weight, inputs.k_weight, inputs.query)]

    ref_term, ref_grads = term_and_grads(torch.float32)
    term, grads = term_and_grads(torch.float16)
    assert 0 < ref_term.item() / (2 * 16 * 4) < 1e-3  # mean per query and head: nearly converged halves
    assert term.item() == pytest.approx(ref_term.item(), rel=0.05)
    for got, ref in zip(grads, ref_grads):
        assert (got - ref).norm() / ref.norm() < 0.05


def test_recomputed_self_attention_keeps_one_gradient_for_its_one_input():
    """Self-attention's key input is its query input: the term keeps one input-sized fp32 gradient
    for it (the query side's and the key side's summed), not one per side, and that gradient is
    the one autograd gives through the full maps."""
    inputs = _converged_halves(torch.float32, 0.3)
    inputs = dataclasses.replace(inputs, key=inputs.query)
    ref = C.attention_consistency(*C.split_halves(inputs.probs(), 1), None, "kl")
    ref_grads = torch.autograd.grad(ref, (inputs.query, inputs.q_weight, inputs.k_weight))
    saved = []

    def pack(t):
        saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        term = C.recomputed_attention_consistency(inputs, None, "kl", block=5)
    assert saved.count(tuple(inputs.query.shape)) == 1
    grads = torch.autograd.grad(term, (inputs.query, inputs.q_weight, inputs.k_weight))
    torch.testing.assert_close(term, ref, rtol=1e-5, atol=1e-7)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_hidden_mse_keeps_one_fp32_difference(dtype):
    """The hidden term's graph keeps one difference of the two states, in fp32 (in fp16 the
    difference of two states of unlike size rounds, tests/unit/test_scale_blind.py), and nothing
    else; its values and gradients are the written-out ones in fp32."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(5, 4, 8, generator=g).to(dtype).requires_grad_(True)  # (T, 2B, C)
    pad = torch.tensor([[False] * 5, [False, False, True, True, True]]).t()
    saved = []

    def pack(t):
        saved.append((t.dtype, tuple(t.shape)))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        term = C.hidden_consistency(*C.split_halves(h, 1), pad, "mse")
    assert saved == [(torch.float32, (5, 2, 8)), (torch.bool, (5, 2))]  # the difference, the padding mask
    (grad,) = torch.autograd.grad(term, h)
    ref_h = h.detach().float().requires_grad_(True)
    a, b = C.split_halves(ref_h, 1)
    ref = ((a - b).pow(2).mean(-1)).masked_fill(pad, 0.0).sum()
    (ref_grad,) = torch.autograd.grad(ref, ref_h)
    torch.testing.assert_close(term, ref, rtol=1e-6, atol=0)
    tol = dict(rtol=1e-3, atol=1e-3) if dtype == torch.float16 else dict(rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad.float(), ref_grad, **tol)
    assert grad.dtype == dtype
