"""lr_drop against fairseq's label smoothing and R-Drop's published criterion."""

import pytest
import torch
import torch.nn.functional as F
from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
from helpers import build, first_batch, reduced

from lrdrop_fairseq.criterions.lr_drop import LRDropConfigError

W0 = ["--kl-weight", "0", "--hidden-weight", "0", "--attn-weight", "0"]


def rdrop_reference_loss(model, sample, eps, pad, alpha):
    """R-Drop's published reg_label_smoothed_cross_entropy forward, restated."""
    net_input = {k: torch.cat([v, v.clone()], 0) for k, v in sample["net_input"].items()}
    net_output = model(**net_input)
    lprobs = model.get_normalized_probs(net_output, log_probs=True).view(-1, len(model.decoder.dictionary))
    target = sample["target"]
    pad_mask = target.unsqueeze(-1).eq(pad)
    loss, _ = label_smoothed_nll_loss(lprobs, torch.cat([target, target]).view(-1, 1), eps, ignore_index=pad)
    lp = model.get_normalized_probs(net_output, log_probs=True)
    pt = model.get_normalized_probs(net_output, log_probs=False)
    p, q = lp.split(lp.size(0) // 2)
    p_tec, q_tec = pt.split(pt.size(0) // 2)
    p_loss = F.kl_div(p, q_tec, reduction="none").masked_fill(pad_mask, 0.0).sum()
    q_loss = F.kl_div(q, p_tec, reduction="none").masked_fill(pad_mask, 0.0).sum()
    return loss + alpha * (p_loss + q_loss) / 2


def test_all_weights_zero_is_two_copy_label_smoothing(toy_data):
    task, model, crit = build(toy_data, extra=W0, dropout=0.0)
    sample = first_batch(task)
    model.train()
    loss, sample_size, log = crit(model, sample)
    model.eval()
    with torch.no_grad():
        ls_loss, _, ls_log = crit(model, sample)  # eval: the ordinary single pass
    assert sample_size == sample["ntokens"]
    torch.testing.assert_close(loss.detach(), 2 * ls_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log["loss"], ls_log["loss"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(log["nll_loss"], ls_log["nll_loss"], rtol=1e-5, atol=1e-5)  # per copy
    assert log["nsentences"] == sample["nsentences"] == ls_log["nsentences"]
    assert not any(k in log for k in ("kl_loss", "hidden_loss", "attn_loss"))


def test_report_accuracy_counts_per_copy(toy_data):
    # --report-accuracy: n_correct and total per copy, as a single pass logs them (dropout 0: the two
    # copies agree, so the training pass's counts are the eval pass's)
    task, model, crit = build(toy_data, extra=[*W0, "--report-accuracy"], dropout=0.0)
    sample = first_batch(task)
    model.train()
    _, _, log = crit(model, sample)
    model.eval()
    with torch.no_grad():
        _, _, eval_log = crit(model, sample)
    assert log["total"] == sample["ntokens"] == eval_log["total"]
    assert 0 < eval_log["n_correct"] < sample["ntokens"]
    assert log["n_correct"] == eval_log["n_correct"]


def test_layer_terms_get_each_sides_padding_and_the_target_token_counts(toy_data, layer_terms_calls):
    # the criterion's wiring: the encoder's mask is the source's pad (one copy's), the decoder's the
    # target's; each sentence counts as its target tokens. Rows of different lengths, so both sides pad.
    task, model, crit = build(toy_data, extra=["--hidden-weight", "1"])
    sample = first_batch(task)
    pad = task.tgt_dict.pad()
    src_pad, tgt_pad = sample["net_input"]["src_tokens"].eq(pad), sample["target"].eq(pad)
    assert src_pad.any() and tgt_pad.any(), "the test needs padding on both sides"
    model.train()
    crit(model, sample)
    (seen,) = layer_terms_calls
    assert torch.equal(seen["pads"]["encoder"], src_pad)
    assert torch.equal(seen["pads"]["decoder"], tgt_pad)
    assert seen["units"].tolist() == (~tgt_pad).sum(1).tolist()


def test_dropout_zero_makes_every_consistency_term_exactly_zero(toy_data):
    task, model, crit = build(toy_data, dropout=0.0, extra=["--hidden-weight", "1"])
    sample = first_batch(task)
    model.train()
    loss, _, log = crit(model, sample)
    for k in ("kl_loss", "hidden_loss", "attn_loss"):
        assert log[k].item() == pytest.approx(0.0, abs=1e-6), k
    model.eval()
    with torch.no_grad():
        ls_loss, _, _ = crit(model, sample)
    torch.testing.assert_close(loss.detach(), 2 * ls_loss, rtol=1e-5, atol=1e-4)


def test_rdrop_mode_equals_published_rdrop_on_same_masks(toy_data):
    task, model, crit = build(toy_data, extra=["--kl-weight", "5", "--hidden-weight", "0", "--attn-weight", "0"])
    sample = first_batch(task)
    model.train()
    torch.manual_seed(123)
    ours, _, log = crit(model, sample)
    torch.manual_seed(123)  # same dropout masks
    ref = rdrop_reference_loss(model, sample, 0.1, task.tgt_dict.pad(), 5.0)
    assert log["kl_loss"].item() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)


def test_full_lrdrop_terms_positive_and_weighted_sum(toy_data):
    task, model, crit = build(toy_data, extra=["--kl-weight", "2", "--hidden-weight", "3", "--attn-weight", "4"])
    sample = first_batch(task)
    model.train()
    loss, _, log = crit(model, sample)
    for k in ("kl_loss", "hidden_loss", "attn_loss"):
        assert log[k].item() > 0, k
        assert not log[k].requires_grad, k  # logged, not kept with its graph
    expected = 2 * log["loss"] + 2 * log["kl_loss"] + 3 * log["hidden_loss"] + 4 * log["attn_loss"]
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-4)
    assert log["objective"] == loss.detach()


def test_gradients_reach_every_parameter(toy_data):
    task, model, crit = build(toy_data)
    sample = first_batch(task)
    model.train()
    loss, _, _ = crit(model, sample)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_consistency_term_gradient_flows_to_both_halves(toy_data):
    task, model, crit = build(toy_data, extra=["--kl-weight", "0", "--hidden-weight", "1", "--attn-weight", "0"])
    sample = first_batch(task)
    model.train()
    net_input = {k: torch.cat([v, v]) for k, v in sample["net_input"].items()}
    out = model(**net_input, lrdrop_record=crit.record_spec)
    states = out[1]["lrdrop"]["decoder_states"]
    for s in states:
        s.retain_grad()
    terms = crit.consistency_terms(
        *crit.get_lprobs_and_target(model, out, {**sample, "target": torch.cat([sample["target"]] * 2)}),
        out[1]["lrdrop"],
        sample["target"],
    )
    terms["hidden_loss"].backward()
    B = sample["target"].size(0)
    g = states[-1].grad
    assert g[:, :B].abs().sum() > 0 and g[:, B:].abs().sum() > 0
    # symmetric: the halves get opposite gradients of the squared difference
    torch.testing.assert_close(g[:, :B], -g[:, B:])


def test_warmup_ramps_weights(toy_data):
    task, model, crit = build(toy_data, extra=["--consistency-warmup-updates", "10", "--hidden-weight", "1"])
    # fairseq first sets the update count after the first update: the first step is update 0
    assert crit.current_weights(model) == {"kl_loss": 0.0, "hidden_loss": 0.0, "attn_loss": 0.0}
    model.set_num_updates(5)
    w = crit.current_weights(model)
    assert w == {"kl_loss": 2.5, "hidden_loss": 0.5, "attn_loss": 0.05}
    model.set_num_updates(50)
    assert crit.current_weights(model)["kl_loss"] == 5.0


def test_the_update_count_still_reaches_fairseqs_submodules(toy_data):
    """The models keep the count for the ramp and still pass it on as fairseq's models do, to every
    submodule with a set_num_updates (e.g. a decoder module that schedules by update)."""
    _, model, _ = build(toy_data)
    seen = []
    child = torch.nn.Module()
    child.set_num_updates = seen.append
    model.decoder.scheduled = child
    model.set_num_updates(7)
    assert model.lrdrop_num_updates == 7 and seen == [7]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--hidden-weight", "-1"], "--hidden-weight must be >= 0"),
        (["--kl-weight", "nan"], "--kl-weight must be >= 0"),
        (["--attn-types", "encoder_self,cross"], "--attn-types"),
        (["--consistency-layers", "first"], "--consistency-layers"),
        (["--attn-small-map", "-1"], "--attn-small-map must be >= 0"),
        (["--attn-map-block", "0"], "--attn-map-block must be >= 1"),
    ],
)
def test_bad_flags_fail_at_startup_naming_the_flag(toy_data, extra, match):
    with pytest.raises(LRDropConfigError, match=match):
        build(toy_data, extra=extra)


def test_hidden_weight_not_given_follows_the_site(toy_data):
    """fairseq's flags leave --hidden-weight unset: 0.1 at the FFN output, 1 at the layer output
    (as lrdrop-modes lrdrop / lrdrop_layer print), and a given weight at either site is kept."""
    layer = ["--hidden-site", "layer"]
    for extra, weight in (([], 0.1), (layer, 1.0), (layer + ["--hidden-weight", "0.2"], 0.2)):
        _, _, crit = build(toy_data, extra=extra)
        assert crit.hidden_weight == weight and crit.full_weights()["hidden_loss"] == weight, extra


def test_plain_arch_with_layer_terms_is_refused_with_the_fix(toy_data):
    task, model, crit = build(toy_data, arch="transformer_tiny")
    model.train()
    with pytest.raises(
        LRDropConfigError, match="architecture 'transformer_tiny' does not.*transformer_lrdrop_iwslt_de_en"
    ):
        crit(model, first_batch(task))
    # weights 0 for the layer terms: R-Drop with any architecture
    task, model, crit = build(toy_data, arch="transformer_tiny", extra=["--hidden-weight", "0", "--attn-weight", "0"])
    model.train()
    assert crit(model, first_batch(task))[2]["kl_loss"] > 0


def test_layer_index_out_of_range_is_refused(toy_data):
    task, model, crit = build(toy_data, extra=["--consistency-layers", "0,5"])
    model.train()
    with pytest.raises(LRDropConfigError, match="layer 5"):
        crit(model, first_batch(task))


def test_attention_with_extra_keys_is_refused_at_the_first_forward_naming_the_fix(toy_data):
    """An attention module that appends keys (add_zero_attn here, as a subclass could build it) is
    refused before training, naming its attention type and the flags that avoid it; the other
    attention types still train."""
    task, model, crit = build(toy_data)
    model.decoder.layers[1].encoder_attn.add_zero_attn = True
    model.train()
    with pytest.raises(LRDropConfigError, match=r"the encoder_decoder attention .*add_bias_kv / add_zero_attn.*"
                       r"Set --attn-weight 0, or --attn-types"):  # fmt: skip
        crit(model, first_batch(task))
    task, model, crit = build(toy_data, extra=["--attn-types", "encoder_self,decoder_self"])
    model.decoder.layers[1].encoder_attn.add_zero_attn = True
    model.train()
    assert crit(model, first_batch(task))[2]["attn_loss"] > 0


def test_all_dropout_zero_warns(toy_data, caplog):
    task, model, crit = build(toy_data, dropout=0.0)
    model.train()
    with caplog.at_level("WARNING"):
        crit(model, first_batch(task))
    assert "consistency terms are exactly 0" in caplog.text
    caplog.clear()
    task, model, crit = build(toy_data, dropout=0.1)
    model.train()
    with caplog.at_level("WARNING"):
        crit(model, first_batch(task))
    assert "exactly 0" not in caplog.text


def _inject_inf_attention(monkeypatch):
    from lrdrop import consistency

    real = consistency.layer_terms

    def with_inf(*args, **kwargs):
        terms = real(*args, **kwargs)
        terms["attn_loss"] = terms["attn_loss"] * float("inf")  # an overflow, still in the graph
        return terms

    monkeypatch.setattr(consistency, "layer_terms", with_inf)


def test_non_finite_term_reaches_fairseqs_check_in_fp32(toy_data, monkeypatch):
    """fp32: a non-finite term is not raised by one rank (the others would hang in the next
    all-reduce); it reaches the loss and the log, and fairseq's own check after the all-reduce
    of the gradients stops every rank together (tests/integration/test_distributed.py)."""
    task, model, crit = build(toy_data)
    _inject_inf_attention(monkeypatch)
    model.train()
    loss, _, log = crit(model, first_batch(task))
    assert not torch.isfinite(loss) and not torch.isfinite(log["attn_loss"]) and torch.isfinite(log["loss"])


def test_fully_sharded_data_parallel_is_refused_with_layer_terms(toy_data):
    """--ddp-backend fully_sharded wraps modules in FSDP (fairscale's, not installed here: a class
    of that name stands in); the layer terms are refused, R-Drop alone is not."""

    class FullyShardedDataParallel(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    task, model, crit = build(toy_data)
    model.encoder.layers[0] = FullyShardedDataParallel(model.encoder.layers[0])
    model.train()
    with pytest.raises(LRDropConfigError, match="fully_sharded.*--hidden-weight 0 --attn-weight 0"):
        crit(model, first_batch(task))
    _, _, rdrop = build(toy_data, extra=["--hidden-weight", "0", "--attn-weight", "0"])
    rdrop.check_model(model)  # no layer terms: no refusal


def test_fp16_overflow_reaches_fairseqs_loss_scaler(toy_data, monkeypatch):
    """Under --fp16 (half parameters) a non-finite term is not raised: its inf gradient reaches
    fairseq's loss scaler, which raises OverflowError (the trainer skips the step) and halves the scale."""
    from fairseq.optim.dynamic_loss_scaler import DynamicLossScaler

    task, model, crit = build(toy_data)
    model.half()
    _inject_inf_attention(monkeypatch)
    model.train()
    loss, _, log = crit(model, first_batch(task))
    assert not torch.isfinite(loss) and not torch.isfinite(log["attn_loss"])
    scaler = DynamicLossScaler(init_scale=128.0, tolerance=0.0)
    scaler.scale(loss).backward()
    grads = [p.grad.float().norm() for p in model.parameters() if p.grad is not None]
    grad_norm = torch.stack(grads).norm()
    with pytest.raises(OverflowError):
        scaler.check_overflow(grad_norm)
    assert scaler.loss_scale == 64.0


@pytest.mark.parametrize("flag", ["--checkpoint-activations", "--offload-activations"])
def test_activation_checkpointing_is_refused_with_layer_terms(toy_data, flag):
    task, model, crit = build(toy_data, extra=[flag])
    assert any(hasattr(m, "precheckpoint_forward") for m in model.modules())  # fairseq wrapped the layers
    model.train()
    with pytest.raises(LRDropConfigError, match=f"{flag}.*--hidden-weight 0 --attn-weight 0"):
        crit(model, first_batch(task))
    # R-Drop alone trains with it: the output KL needs no recording
    task, model, crit = build(toy_data, extra=[flag, "--kl-weight", "1", "--hidden-weight", "0", "--attn-weight", "0"])
    model.train()
    loss, _, log = crit(model, first_batch(task))
    loss.backward()
    assert log["kl_loss"] > 0


@pytest.mark.parametrize(
    "arch, data", [("transformer_lrdrop_tiny", "toy_data"), ("bart_lrdrop_base", "toy_data_joined")]
)
@pytest.mark.parametrize("flag", ["--encoder-layerdrop", "--decoder-layerdrop"])
def test_layerdrop_is_refused_with_layer_terms(request, arch, data, flag):
    toy_data = request.getfixturevalue(data)
    task, model, crit = build(toy_data, arch=arch, extra=[flag, "0.5"])
    model.train()
    with pytest.raises(LRDropConfigError, match=f"LayerDrop.*Set {flag} 0"):
        crit(model, first_batch(task))
    task, model, crit = build(toy_data, arch=arch, extra=[flag, "0.5", "--hidden-weight", "0", "--attn-weight", "0"])
    model.train()
    assert crit(model, first_batch(task))[2]["kl_loss"] > 0


def test_sentence_avg_divides_every_term_alike(toy_data):
    """--sentence-avg changes only the normaliser: on the same dropout masks the loss (a sum of
    the cross-entropy, the KL and the layer terms) is the same as without it, and sample_size is
    the sentence count instead of the target tokens. So a weight keeps its meaning relative to
    the cross-entropy (the layer terms used to stay per-token means there, and their weight
    dropped by the mean target length)."""
    from lrdrop_fairseq.criterions.lr_drop import LRDropCriterion

    extra = ["--kl-weight", "2", "--hidden-weight", "3", "--attn-weight", "4", "--sentence-avg"]
    task, model, crit = build(toy_data, extra=extra)
    per_token = LRDropCriterion(task, False, 0.1, kl_weight=2, hidden_weight=3, attn_weight=4)
    sample = first_batch(task)
    model.train()
    torch.manual_seed(3)
    loss, sample_size, log = crit(model, sample)
    torch.manual_seed(3)
    loss_tokens, sample_size_tokens, _ = per_token(model, sample)
    assert sample_size == sample["target"].size(0) != sample_size_tokens == sample["ntokens"]
    torch.testing.assert_close(loss, loss_tokens)
    expected = 2 * log["loss"] + 2 * log["kl_loss"] + 3 * log["hidden_loss"] + 4 * log["attn_loss"]
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-4)


def test_quant_noise_is_refused_with_layer_terms(toy_data):
    """--quant-noise-pq: fairseq's hook on q_proj rewrites its weight in place whenever q_proj is
    called. The attention term records fairseq's explicit path, which calls q_proj; the fused
    path R-Drop takes does not, so the two modes would train different weights. Refused."""
    task, model, crit = build(toy_data, extra=["--quant-noise-pq", "0.1"])
    model.train()
    with pytest.raises(LRDropConfigError, match="--quant-noise-pq 0.1.*--hidden-weight 0 --attn-weight 0"):
        crit(model, first_batch(task))
    task, model, crit = build(toy_data, extra=["--quant-noise-pq", "0.1", "--hidden-weight", "0", "--attn-weight", "0"])
    model.train()
    assert crit(model, first_batch(task))[2]["kl_loss"] > 0


LN2 = 0.6931471805599453
TOKEN_LOGS = [  # two workers' logging outputs of lr_drop
    {"loss": 6.0, "nll_loss": 5.0, "ntokens": 10, "nsentences": 2, "sample_size": 10, "objective": 14.0,
     "kl_loss": 3.0, "attn_loss": 1.0},
    {"loss": 9.0, "nll_loss": 7.0, "ntokens": 30, "nsentences": 3, "sample_size": 30, "objective": 26.0,
     "kl_loss": 5.0, "attn_loss": 2.0},
]  # fmt: skip
SENTENCE_LOGS = [  # ... and of lr_drop_sentence_prediction
    {"loss": 2.0, "ntokens": 20, "nsentences": 2, "sample_size": 2, "objective": 5.0, "ncorrect": 1.5,
     "kl_loss": 1.0, "attn_loss": 4.0},
    {"loss": 4.0, "ntokens": 60, "nsentences": 6, "sample_size": 6, "objective": 11.0, "ncorrect": 4.5,
     "kl_loss": 3.0, "attn_loss": 2.0},
]  # fmt: skip


@pytest.mark.parametrize(
    "criterion, logs, expected",
    [
        # objective in bits per sample_size, each term per target token; fairseq's loss per copy
        ("lr_drop", TOKEN_LOGS, {"objective": 40 / 40 / LN2, "kl_loss": 8 / 40, "attn_loss": 3 / 40,
                                 "loss": 15 / 40 / LN2, "hidden_loss": None}),
        # fairseq's loss and accuracy, each term per sentence
        ("lr_drop_sentence_prediction", SENTENCE_LOGS, {"objective": 16 / 8 / LN2, "kl_loss": 4 / 8,
         "attn_loss": 6 / 8, "loss": 6 / 8 / LN2, "accuracy": 75.0, "hidden_loss": None,
         "prediction_mse_loss": None}),
    ],
)  # fmt: skip
def test_reduce_metrics_by_hand(criterion, logs, expected):
    # what fairseq logs for two workers' outputs; None: a term no worker logged is not logged
    from fairseq.criterions import CRITERION_REGISTRY

    got = reduced(CRITERION_REGISTRY[criterion], logs)
    for key, value in expected.items():
        if value is None:
            assert key not in got
        else:
            assert got[key] == pytest.approx(value, abs=1e-3), key
