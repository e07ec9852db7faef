"""The health figures logged with the layer terms (score sd per attention type, the compared
states' RMS) and the one flat-attention warning: the core's monitor, fairseq's criteria, and the
figure against lrdrop-diagnose's on the same batch."""

import pytest
import torch
from helpers import build, first_batch, reduced

from lrdrop.health import CHECK_AFTER, CHECK_EVERY, FLAT_SCORE_SD, FlatAttentionMonitor
from lrdrop_fairseq.criterions.lr_drop import LRDropCriterion

TYPES = ("encoder_self", "decoder_self", "encoder_decoder")


def _stats(**sd):
    return {f"attn_sd_{t}": torch.tensor(v) for t, v in sd.items()}


def test_monitor_checks_after_the_ramp_and_warns_once():
    m = FlatAttentionMonitor(warmup_updates=0)
    assert m.start == CHECK_AFTER  # never before the attention has had time to form
    assert m.observe(_stats(encoder_decoder=0.0), CHECK_AFTER - 1) is None  # flat at the start: no check yet
    msg = m.observe(_stats(encoder_decoder=0.0, encoder_self=2.0), CHECK_AFTER)
    assert "encoder_decoder" in msg and "encoder_self" not in msg
    assert f"below {FLAT_SCORE_SD:g}" in msg and "--attn-loss corr" in msg and "--attn-weight" in msg
    assert m.observe(_stats(encoder_decoder=0.0), CHECK_AFTER + CHECK_EVERY) is None  # once
    ramped = FlatAttentionMonitor(warmup_updates=3000)
    assert ramped.observe(_stats(encoder_decoder=0.0), 2999) is None
    assert ramped.observe(_stats(encoder_decoder=0.0), 3000) is not None


def test_monitor_reads_a_moving_average_every_check_interval():
    """Sharp, then flat: the average falls below the threshold only after enough flat forwards, and
    the next check (CHECK_EVERY updates on) finds it."""
    m = FlatAttentionMonitor()
    for step in range(100):
        assert m.observe(_stats(encoder_decoder=1.5), step) is None
    assert m.observe(_stats(encoder_decoder=1.5), CHECK_AFTER) is None
    for _ in range(300):  # flat forwards between two checks: no read-back, no warning
        assert m.observe(_stats(encoder_decoder=0.05), CHECK_AFTER + 1) is None
    assert m.averages["attn_sd_encoder_decoder"].item() < FLAT_SCORE_SD
    assert m.observe(_stats(encoder_decoder=0.05), CHECK_AFTER + CHECK_EVERY) is not None


def _forward(crit, model, task, updates=0, seed=1):
    model.train()
    model.set_num_updates(updates)
    sample = first_batch(task)  # before the seed: reading a batch draws from torch's generator
    torch.manual_seed(seed)
    return crit(model, sample)[2]


def test_lr_drop_logs_each_types_score_sd_and_the_ffn_rms(toy_data):
    task, model, crit = build(toy_data)
    log = _forward(crit, model, task)
    for t in TYPES:
        assert 0 < float(log[f"attn_sd_{t}"]) < 10, t
    assert float(log["ffn_rms"]) > 0 and log["lrdrop_health"] == 1
    # fairseq's reduce: the mean over the forwards that computed them, whatever their size
    logs = [dict(log, attn_sd_encoder_self=1.0, ffn_rms=2.0), dict(log, attn_sd_encoder_self=3.0, ffn_rms=4.0,
                                                                      ntokens=5 * log["ntokens"])]  # fmt: skip
    got = reduced(LRDropCriterion, logs)
    assert got["attn_sd_encoder_self"] == pytest.approx(2.0) and got["ffn_rms"] == pytest.approx(3.0)
    _, _, rdrop = build(toy_data, extra=["--hidden-weight", "0", "--attn-weight", "0"])
    assert not any(k.startswith("attn_sd_") or k.endswith("_rms") for k in _forward(rdrop, model, task))
    _, _, layer = build(toy_data, extra=["--hidden-site", "layer", "--attn-weight", "0"])
    log = _forward(layer, model, task)
    assert "layer_rms" in log and "ffn_rms" not in log and not any(k.startswith("attn_sd_") for k in log)


def test_logged_figures_equal_lrdrop_diagnose_on_the_same_batch(toy_data):
    """The same batch and dropout masks: lr_drop's logged score sd per type and FFN RMS are
    lrdrop-diagnose's attn_score_sd_TYPE and rms_ffn (one computes them from the term's maps while
    training, the other from the recorded probabilities afterwards)."""
    from lrdrop_cli.measure.diagnose import diagnose

    task, model, crit = build(toy_data)
    log = _forward(crit, model, task, seed=1)
    diag = diagnose(model, task, [first_batch(task)], seed=1)
    for t in TYPES:
        assert float(log[f"attn_sd_{t}"]) == pytest.approx(diag[f"attn_score_sd_{t}"], rel=1e-5), t
    assert float(log["ffn_rms"]) == pytest.approx(diag["rms_ffn"], rel=1e-5)


def _zero_queries(model):
    for m in model.modules():
        if hasattr(m, "q_proj"):
            torch.nn.init.zeros_(m.q_proj.weight)
            torch.nn.init.zeros_(m.q_proj.bias)


def _sharpen_queries(model, factor):
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "q_proj"):
                m.q_proj.weight.mul_(factor)


@pytest.mark.parametrize("attn_loss", ["kl", "corr"])
def test_a_model_with_zeroed_queries_warns_once_after_the_ramp(toy_data, caplog, attn_loss):
    """Zero query projections: every row is uniform, score sd 0 in every type; the warning names
    them, the figure and the threshold, at the first check after the ramp, once."""
    task, model, crit = build(toy_data, extra=["--attn-loss", attn_loss, "--consistency-warmup-updates", "1500"])
    _zero_queries(model)
    with caplog.at_level("WARNING"):
        log = _forward(crit, model, task, updates=CHECK_AFTER)  # before the ramp's end
        assert float(log["attn_sd_encoder_decoder"]) == 0
        assert "flat attention" not in caplog.text
        _forward(crit, model, task, updates=1500)
    assert caplog.text.count("flat attention at update 1500") == 1
    for t in TYPES:
        assert f"{t} 0.000" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        _forward(crit, model, task, updates=1500 + CHECK_EVERY)
    assert "flat attention" not in caplog.text


def test_a_model_with_sharp_attention_does_not_warn(toy_data, caplog):
    task, model, crit = build(toy_data)
    _sharpen_queries(model, 40.0)
    with caplog.at_level("WARNING"):
        for updates in (CHECK_AFTER, CHECK_AFTER + CHECK_EVERY):
            log = _forward(crit, model, task, updates=updates)
    assert min(float(log[f"attn_sd_{t}"]) for t in TYPES) > FLAT_SCORE_SD
    assert "flat attention" not in caplog.text
