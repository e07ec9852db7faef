"""The criterion's wiring, checked against states taken independently of the records.

Each test reruns the criterion's own doubled forward with the same dropout masks
(same seed), takes the states with forward hooks on fairseq's layers (not from
``extra["lrdrop"]``), builds the padding masks from the tokens, and recomputes
the term with plain torch. A wrong mask (none, the target's, not transposed), a
wrong state (the embedding output, the layer before, the layer after the FFN) or
a wrong normalisation then changes the value; each test also checks that the
padded positions would change it, so it cannot pass by accident.
"""

import math

import pytest
import torch
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
from helpers import build, first_batch, hooked_forward, masked_mse, per_sentence_sum

HIDDEN_ONLY = ["--kl-weight", "0", "--attn-weight", "0", "--hidden-weight", "1"]
ARCHS = [("transformer_lrdrop_tiny", "toy_data"), ("bart_lrdrop_base", "toy_data_joined")]


def _criterion_terms(crit, model, sample, seed=7):
    """The criterion's logged terms for one training forward with ``seed``'s masks: every term
    a sum over the batch in target-token units, as the loss holds it."""
    model.train()
    torch.manual_seed(seed)
    _, sample_size, log = crit(model, sample)
    return log, sample_size


def _pads(task, sample):
    src_pad = sample["net_input"]["src_tokens"].eq(task.src_dict.pad())  # (B, S)
    tgt_pad = sample["target"].eq(task.tgt_dict.pad())  # (B, T)
    assert src_pad.any() and tgt_pad.any(), "the batch must contain padding on both sides"
    return src_pad, tgt_pad


@pytest.mark.parametrize("arch, data_fixture", ARCHS)
@pytest.mark.parametrize("site", ["layer", "ffn"])
def test_hidden_term_uses_layer_states_and_both_padding_masks(request, arch, data_fixture, site):
    task, model, crit = build(
        request.getfixturevalue(data_fixture), arch=arch, extra=HIDDEN_ONLY + ["--hidden-site", site]
    )
    sample = first_batch(task)
    src_pad, tgt_pad = _pads(task, sample)
    log, _ = _criterion_terms(crit, model, sample)

    if site == "layer":  # each layer's output: not the embedding output, not the final layer norm's
        hooked = {"enc": list(model.encoder.layers), "dec": list(model.decoder.layers)}
    else:  # the FFN's second linear layer: before the FFN's dropout and the residual
        hooked = {
            "enc": [layer.fc2 for layer in model.encoder.layers],
            "dec": [layer.fc2 for layer in model.decoder.layers],
        }
    states, _ = hooked_forward(crit, model, sample, hooked)
    assert len(states["enc"]) == len(states["dec"]) == 2
    per_layer, unmasked = [], []
    units = (~tgt_pad).sum(1).float()  # each sentence counts as its target tokens
    # each layer, per sentence: the mean over its own side's real tokens
    for h, pad in [(h, src_pad) for h in states["enc"]] + [(h, tgt_pad) for h in states["dec"]]:
        masked, total = masked_mse(h, pad, units)
        per_layer.append(masked), unmasked.append(total)
    expected = torch.stack(per_layer).mean()
    torch.testing.assert_close(log["hidden_loss"], expected, rtol=1e-5, atol=1e-7)
    # padded positions differ between the halves, so a missing or wrong mask would show
    assert (torch.stack(unmasked).mean() - expected).abs() > 1e-3 * expected


@pytest.mark.parametrize("arch, data_fixture", ARCHS)
def test_encoder_self_attention_term_ignores_padded_queries(request, arch, data_fixture):
    task, model, crit = build(
        request.getfixturevalue(data_fixture),
        arch=arch,
        extra=["--kl-weight", "0", "--hidden-weight", "0", "--attn-weight", "1", "--attn-types", "encoder_self"],
    )
    sample = first_batch(task)
    src_pad, _ = _pads(task, sample)
    log, _ = _criterion_terms(crit, model, sample)
    _, net_output = hooked_forward(crit, model, sample, {})
    per_layer, unmasked = [], []
    units = (~sample["target"].eq(task.tgt_dict.pad())).sum(1).float()
    for r in net_output[1]["lrdrop"]["attn"]["encoder_self"]:
        p, q = r.probs().chunk(2, dim=1)  # (H, B, S, S) probabilities of each copy
        sym_kl = 0.5 * ((p - q) * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(-1)  # (H, B, S)
        masked, total = per_sentence_sum(sym_kl.mean(0), src_pad, units)  # queries are source tokens
        per_layer.append(masked), unmasked.append(total)
    expected = torch.stack(per_layer).mean()
    torch.testing.assert_close(log["attn_loss"], expected, rtol=1e-4, atol=1e-7)
    assert (torch.stack(unmasked).mean() - expected).abs() > 1e-3 * expected


@pytest.mark.parametrize("arch, data_fixture", ARCHS)
def test_decoder_attention_terms_ignore_padded_target_queries(request, arch, data_fixture):
    task, model, crit = build(
        request.getfixturevalue(data_fixture),
        arch=arch,
        extra=[
            "--kl-weight",
            "0",
            "--hidden-weight",
            "0",
            "--attn-weight",
            "1",
            "--attn-types",
            "decoder_self,encoder_decoder",
            "--attn-loss",
            "mse",
        ],
    )
    sample = first_batch(task)
    _, tgt_pad = _pads(task, sample)
    log, _ = _criterion_terms(crit, model, sample)
    _, net_output = hooked_forward(crit, model, sample, {})
    per_type = []
    for t in ("decoder_self", "encoder_decoder"):
        layers = []
        for r in net_output[1]["lrdrop"]["attn"][t]:
            p, q = r.probs().chunk(2, dim=1)
            # per target query; each sentence's mean over its queries x its target tokens: a token sum
            layers.append((p - q).pow(2).sum(-1).mean(0).masked_fill(tgt_pad, 0.0).sum())
        per_type.append(torch.stack(layers).mean())
    torch.testing.assert_close(log["attn_loss"], torch.stack(per_type).mean(), rtol=1e-4, atol=1e-8)


def test_kl_and_label_smoothing_normalised_by_one_copys_tokens(toy_data):
    """loss = CE(copy 1) + CE(copy 2) + w * KL, all token sums; sample_size = one copy's tokens."""
    task, model, crit = build(toy_data, extra=["--kl-weight", "3", "--hidden-weight", "0", "--attn-weight", "0"])
    sample = first_batch(task)
    model.train()
    torch.manual_seed(7)
    loss, sample_size, log = crit(model, sample)
    _, net_output = hooked_forward(crit, model, sample, {})
    lprobs = model.get_normalized_probs(net_output, log_probs=True).float()  # (2B, T, V)
    target = sample["target"]
    pad = target.eq(task.tgt_dict.pad())
    lp1, lp2 = lprobs.chunk(2)
    kl = 0.5 * ((lp1.exp() - lp2.exp()) * (lp1 - lp2)).sum(-1).masked_fill(pad, 0.0).sum()
    ce, _ = label_smoothed_nll_loss(
        lprobs.view(-1, lprobs.size(-1)), torch.cat([target, target]).view(-1, 1), 0.1, ignore_index=task.tgt_dict.pad()
    )
    assert sample_size == sample["ntokens"] == int((~pad).sum())
    torch.testing.assert_close(log["kl_loss"], kl, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss.detach(), ce + 3 * kl, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(log["loss"], ce / 2, rtol=1e-5, atol=1e-4)


def test_layer_reduction_sum_is_mean_times_layers(toy_data):
    task, model, crit_mean = build(toy_data, extra=["--kl-weight", "0", "--hidden-weight", "1"])
    _, same_model, crit_sum = build(
        toy_data, extra=["--kl-weight", "0", "--hidden-weight", "1", "--layer-reduction", "sum"]
    )
    sample = first_batch(task)
    mean_log, _ = _criterion_terms(crit_mean, model, sample)
    sum_log, _ = _criterion_terms(crit_sum, same_model, sample)
    # 2 encoder + 2 decoder layers for the hidden term; 2 layers per attention type (types still averaged)
    torch.testing.assert_close(sum_log["hidden_loss"], 4 * mean_log["hidden_loss"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(sum_log["attn_loss"], 2 * mean_log["attn_loss"], rtol=1e-5, atol=1e-7)


def test_diagnose_measures_the_criterions_own_terms(toy_data):
    """Each candidate's value is what lr_drop logs when configured with it; each gradient ratio
    and cosine comes from the criterion's loss: d(CE + term)/dθ - d(CE)/dθ is the term's gradient."""
    from lrdrop_cli.measure import diagnose

    task, model, crit = build(toy_data, extra=["--kl-weight", "1", "--hidden-weight", "1", "--attn-weight", "1"])
    # without layer terms fairseq takes torch's fused attention, whose dropout draws other masks
    for m in model.modules():
        if hasattr(m, "dropout_module") and hasattr(m, "k_proj"):
            m.dropout_module.p = 0.0
    gains = diagnose.layer_norm_gains(model)
    assert gains == {"ln_compared_mean": 1.0, "ln_compared_min": 1.0, "ln_other_mean": 1.0}  # as initialised
    sample = first_batch(task)
    ntok = sample["ntokens"]
    row = diagnose.diagnose(model, task, [sample], seed=7)
    log, _ = _criterion_terms(crit, model, sample, seed=7)  # same masks
    # the log holds sums in target-token units; diagnose reports them per target token
    assert row["kl"] == pytest.approx(log["kl_loss"].item() / ntok, rel=1e-5)
    assert row["attn"] == pytest.approx(log["attn_loss"].item() / ntok, rel=1e-5)
    for site, dist in diagnose.CANDIDATES:
        _, _, other = build(toy_data, extra=["--hidden-weight", "1", "--hidden-site", site, "--hidden-loss", dist])
        value = _criterion_terms(other, model, sample, seed=7)[0]["hidden_loss"].item() / ntok
        assert row[f"hidden_{site}_{dist}"] == pytest.approx(value, rel=1e-5), (site, dist)

    src_len, tgt_len = sample["net_input"]["src_tokens"].shape[1], sample["target"].shape[1]
    for attn_type, keys in (("encoder_self", src_len), ("decoder_self", tgt_len), ("encoder_decoder", src_len)):
        assert 0.5 < row[f"attn_entropy_{attn_type}"] < math.log2(keys), attn_type  # an untrained model: near uniform
        assert 0 < row[f"attn_score_sd_{attn_type}"] < 3, attn_type
        assert row[f"attn_entropy_{attn_type}"] <= row[f"attn_uniform_entropy_{attn_type}"] <= math.log2(keys)
    # the spread is the scores': scaling every query projection by 3 scales it about 3 times (exactly in
    # a first layer; a later layer's inputs change a little with the attention below it)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "q_proj"):
                m.q_proj.weight.mul_(3)
                m.q_proj.bias.mul_(3)
    tripled = diagnose.diagnose(model, task, [sample], seed=7)
    for attn_type in ("encoder_self", "decoder_self", "encoder_decoder"):
        key = f"attn_score_sd_{attn_type}"
        assert tripled[key] == pytest.approx(3 * row[key], rel=0.1), attn_type
    # back as it was (the gradient checks below use the model)
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "q_proj"):
                m.q_proj.weight.div_(3)
                m.q_proj.bias.div_(3)

    params = [p for p in model.parameters() if p.requires_grad]

    def grad_of_loss(*flags):
        _, _, c = build(toy_data, extra=["--kl-weight", "0", "--attn-weight", "0", "--hidden-weight", "0", *flags])
        model.train()
        torch.manual_seed(7)
        loss = c(model, sample)[0] / ntok
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params, allow_unused=False)])

    g_ce = grad_of_loss()
    for name, flags in (("kl", ["--kl-weight", "1"]), ("attn", ["--attn-weight", "1"])):
        g_term = grad_of_loss(*flags) - g_ce
        assert row[f"{name}_grad_ratio"] == pytest.approx((g_term.norm() / g_ce.norm()).item(), rel=1e-3), name
        cos = torch.nn.functional.cosine_similarity(g_term, g_ce, dim=0).item()
        assert row[f"{name}_grad_cos"] == pytest.approx(cos, rel=1e-3, abs=1e-4), name


def test_attention_entropy_by_hand():
    """Bits per real query row: [1/2, 1/2, 0] has 1 bit, [1, 0, 0] 0, [1/4]*4 2; a padded query
    row counts for nothing."""
    from lrdrop_cli.measure.diagnose import attention_entropy

    maps = torch.tensor([[[[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], [[0.25] * 4, [0.9, 0.1, 0.0, 0.0]]]])
    pad = torch.tensor([[False, False], [False, True]])  # (2B=2, Tq=2): the second copy's last query
    assert attention_entropy(maps, pad) == pytest.approx((1 + 0 + 2) / 3)
    assert attention_entropy(maps) == pytest.approx((1 + 0 + 2 + 0.4689956) / 4, rel=1e-6)
    # uniform rows over each row's keys: 2, 1, 4 and 2 of them
    from lrdrop_cli.measure.diagnose import attention_uniform_entropy, key_counts

    counts = torch.tensor([[2, 1], [4, 2]])
    assert attention_uniform_entropy(counts, pad) == pytest.approx((1 + 0 + 2) / 3)
    assert attention_uniform_entropy(counts) == pytest.approx((1 + 0 + 2 + 1) / 4)
    # the keys: the source's real tokens, or the target positions so far
    records = {"encoder_padding_mask": torch.tensor([[True, False, False], [False, False, False]])}
    assert key_counts("encoder_decoder", records, pad).tolist() == [[2, 2], [3, 3]]
    assert key_counts("encoder_self", records, torch.zeros(2, 3, dtype=torch.bool)).tolist() == [[2] * 3, [3] * 3]
    assert key_counts("decoder_self", records, pad).tolist() == [[1, 2], [1, 2]]


def test_attention_score_sd_by_hand():
    """The sd over a row's unmasked keys of the scores behind it: softmax([0, 2, 4], masked) has
    scores 0, 2, 4 (sd sqrt(8/3)); a uniform row has 0; a row with one real key 0; a padded query
    row counts for nothing; shifting every score of a row changes nothing. (The core's figure,
    which lr_drop logs and lrdrop-diagnose reports.)"""
    from lrdrop.attention import attention_score_sd

    inf = math.inf
    scores = torch.tensor(
        [[[[0.0, 2.0, 4.0, -inf], [1.0, 1.0, 1.0, 1.0]], [[5.0, -inf, -inf, -inf], [0.0, 9.0, 0.0, 0.0]]]]
    )  # (H=1, 2B=2, Tq=2, Tk=4)
    maps = scores.softmax(-1)
    pad = torch.tensor([[False, False], [False, True]])  # the second copy's last query is a pad
    sd = math.sqrt(8 / 3)
    assert attention_score_sd(maps, pad).item() == pytest.approx((sd + 0 + 0) / 3, rel=1e-5)
    assert attention_score_sd(maps).item() == pytest.approx((sd + 0 + 0 + math.sqrt(3 * 81 / 16)) / 4, rel=1e-5)
    assert attention_score_sd((scores + 7).softmax(-1), pad).item() == pytest.approx(sd / 3, rel=1e-5)


def test_diagnose_batches_spread_over_the_corpus_and_are_the_same_each_time(toy_data):
    """fairseq batches sentences of similar length: the first batches of the unshuffled epoch are
    the shortest. diagnose takes the first of seed 1's shuffled epoch, the same for every checkpoint
    (each loads its own task)."""
    from lrdrop_cli.measure import diagnose

    picked = diagnose.batches(build(toy_data)[0], 3, 300)
    again = diagnose.batches(build(toy_data)[0], 3, 300)
    assert [a["id"].tolist() for a in picked] == [b["id"].tolist() for b in again]
    lengths = torch.cat([s["net_input"]["src_lengths"] for s in picked]).float()
    task = build(toy_data)[0]
    shortest = torch.tensor(sorted(task.dataset("train").src.sizes.tolist())[: len(lengths)]).float()
    assert lengths.mean() > shortest.mean() + 2


def test_diagnose_groups_the_compared_layer_norms(toy_data):
    """The compared gains are each layer's final_layer_norm (whose output the hidden term
    compares in a post-norm layer); the attention sublayers' norms are the others."""
    from lrdrop_cli.measure import diagnose

    _, model, _ = build(toy_data)
    with torch.no_grad():
        model.encoder.layers[0].final_layer_norm.weight.fill_(0.2)  # one of 4 compared norms, 16 gains each
        model.decoder.layers[1].encoder_attn_layer_norm.weight.fill_(3.0)  # one of 6 other norms
    gains = diagnose.layer_norm_gains(model)
    assert gains["ln_compared_mean"] == pytest.approx((0.2 + 3 * 1.0) / 4)
    assert gains["ln_compared_min"] == pytest.approx(0.2)
    assert gains["ln_other_mean"] == pytest.approx((3.0 + 5 * 1.0) / 6)


@pytest.mark.parametrize("in_backward", [False, True], ids=["gradient-in-forward", "maps-again-in-backward"])
@pytest.mark.parametrize("arch, data_fixture", ARCHS)
def test_attention_term_is_the_same_recorded_or_recomputed(request, arch, data_fixture, in_backward):
    """Small maps are recorded from fairseq's explicit path, large ones recomputed by the term
    (--attn-small-map 0: every self-attention map counts as large; --attn-map-block 64: blocks of
    a query or two; --attn-recompute-in-backward: the maps again in the backward): the same masks
    give the same term and the same gradients either way."""
    data = request.getfixturevalue(data_fixture)
    task, model, crit = build(data, arch=arch, extra=["--kl-weight", "0"])
    again = ["--attn-recompute-in-backward"] if in_backward else []
    _, _, recomputing = build(data, arch=arch, extra=["--kl-weight", "0", "--attn-small-map", "0",
                                                      "--attn-map-block", "64", *again])  # fmt: skip
    assert recomputing.record_spec.small_map == 0 and recomputing.map_block == 64
    assert recomputing.recompute_in_backward is in_backward and crit.recompute_in_backward is False
    sample = first_batch(task)
    results = []
    for crit in (crit, recomputing):
        model.zero_grad()
        model.train()
        torch.manual_seed(11)
        loss, _, log = crit(model, sample)
        loss.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
        results.append((log["attn_loss"], grad))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-3, atol=1e-5)
