"""lr_drop_sentence_prediction in-process: hand-computed terms, wiring on RoBERTa and BART, bad flags,
the official-checkpoint restore and export."""

import math

import pytest
import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.modules.fairseq_dropout import FairseqDropout
from fairseq.trainer import Trainer
from helpers import (
    HEAD,
    REGRESSION,
    build_sentence,
    first_batch,
    hooked_forward,
    masked_mse,
    per_sentence_sum,
    random_official_roberta,
    sentence_args,
)

from lrdrop_fairseq.guards import LRDropConfigError


class StubModel(torch.nn.Module):
    """Returns fixed head outputs and records for the doubled batch: the criterion's arithmetic
    can then be checked against numbers worked out by hand."""

    supports_lrdrop_records = True
    lrdrop_attn_types = ("encoder_self",)

    def __init__(self, logits, records):
        super().__init__()
        self.logits, self.records = logits, records
        self.dropout = FairseqDropout(0.1)  # the criterion warns when every dropout is 0

    def lrdrop_attention_modules(self, spec):
        return {}

    def lrdrop_stacks(self):
        return {}  # no layers to check for LayerDrop

    def get_targets(self, sample, net_output):
        return sample["target"]

    def forward(self, src_tokens, src_lengths=None, lrdrop_record=None, **head):
        assert src_tokens.size(0) == self.logits.size(0) and head == HEAD  # the doubled batch
        return self.logits, ({"lrdrop": self.records} if lrdrop_record is not None else {})


def _stub_sample(target):
    tokens = torch.tensor([[0, 5, 2], [0, 2, 1]])  # pad (1) at the second sentence's last position
    return {"net_input": {"src_tokens": tokens, "src_lengths": torch.tensor([3, 2])}, "target": target, "ntokens": 5}


def test_classification_terms_by_hand_with_padding(toy_sentences):
    task, _, crit = build_sentence(
        toy_sentences["classification"],
        extra=["--kl-weight", "2", "--hidden-weight", "3", "--attn-weight", "4", "--attn-loss", "mse"],
    )
    ln3 = math.log(3)
    logits = torch.tensor([[0.0, ln3], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # copy 1: (.25, .75), (.5, .5)
    pad = torch.tensor([[False, False, False], [False, False, True]])
    h = torch.zeros(3, 4, 2)  # (T, 2B, C); copy 1 is all zeros
    h[0, 2] = torch.tensor([1.0, 1.0])  # sentence 1, token 0: mean square 1
    h[1, 2] = torch.tensor([2.0, 0.0])  # sentence 1, token 1: 2
    h[0, 3] = torch.tensor([0.0, 4.0])  # sentence 2, token 0: 8
    h[2, 3] = torch.tensor([10.0, 10.0])  # sentence 2's pad token: 100, must not count
    a = torch.zeros(1, 4, 3, 3)  # (H, 2B, Tq, Tk)
    a[..., 0] = 1.0
    a[0, 2, 0] = torch.tensor([0.0, 1.0, 0.0])  # sentence 1, query 0: squared difference 2
    a[0, 3, 2] = torch.tensor([0.0, 1.0, 0.0])  # sentence 2's pad query: 2, must not count
    records = {"encoder_padding_mask": torch.cat([pad, pad]), "encoder_states": [h], "attn": {"encoder_self": [a]}}
    model = StubModel(logits, records)
    model.train()
    loss, sample_size, log = crit(model, _stub_sample(torch.tensor([1, 0])))

    task_loss = math.log(4 / 3) + 3 * math.log(2)  # -ln .75 - ln .5 (copy 1), -2 ln .5 (copy 2)
    kl = 0.125 * ln3  # sentence 1: (KL(p||q) + KL(q||p)) / 2 for p = (.25, .75), q = (.5, .5)
    # per sentence, the mean over its own real tokens, each sentence counted once: hidden
    # (1 + 2 + 0) / 3 + (8 + 0) / 2, attention 2 / 3 + 0 / 2 (token sums over the batch's 5 real
    # tokens x 2 sentences / 5 tokens, not additive over micro-batches, would give 4.4 and 0.8)
    hidden, attn = 1.0 + 4.0, 2.0 / 3
    assert sample_size == 2 and log["nsentences"] == 2
    assert log["kl_loss"].item() == pytest.approx(kl, rel=1e-6)
    assert log["hidden_loss"].item() == pytest.approx(hidden, rel=1e-6)
    assert log["attn_loss"].item() == pytest.approx(attn, rel=1e-6)
    assert log["loss"].item() == pytest.approx(task_loss / 2, rel=1e-6)
    assert log["ncorrect"] == 1.5  # copy 1 gets both, copy 2 (a tie -> class 0) only the second
    expected = task_loss + 2 * kl + 3 * hidden + 4 * attn
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert log["objective"].item() == pytest.approx(expected, rel=1e-6)


def test_regression_terms_by_hand(toy_sentences):
    task, _, crit = build_sentence(
        toy_sentences["regression"],
        extra=[*REGRESSION, "--prediction-mse-weight", "2", "--hidden-weight", "0", "--attn-weight", "0"],
    )
    preds = torch.tensor([[1.0], [2.0], [1.5], [2.0]])  # copy 1, then copy 2
    model = StubModel(preds, {})
    model.train()
    loss, sample_size, log = crit(model, _stub_sample(torch.tensor([[1.0], [3.0]])))
    # MSE: copy 1 0 + 1, copy 2 .25 + 1; the two predictions differ by .5 on sentence 1
    assert sample_size == 2
    assert log["prediction_mse_loss"].item() == pytest.approx(0.25)
    assert "kl_loss" not in log and "ncorrect" not in log
    assert loss.item() == pytest.approx(2.25 + 2 * 0.25)
    # weight 0: the term is neither computed nor logged
    _, _, crit = build_sentence(
        toy_sentences["regression"],
        extra=[*REGRESSION, "--prediction-mse-weight", "0", "--hidden-weight", "0", "--attn-weight", "0"],
    )
    loss, _, log = crit(model, _stub_sample(torch.tensor([[1.0], [3.0]])))
    assert "prediction_mse_loss" not in log and loss.item() == pytest.approx(2.25)


def test_defaults_are_the_papers_three_terms(toy_sentences):
    _, _, crit = build_sentence(toy_sentences["classification"])
    assert crit.full_weights() == {"kl_loss": 1.0, "hidden_loss": 0.1, "attn_loss": 0.1}
    assert crit.record_spec.hidden_site == "ffn"
    _, _, reg = build_sentence(toy_sentences["regression"], extra=REGRESSION)
    assert reg.full_weights() == {"prediction_mse_loss": 1.0, "hidden_loss": 0.1, "attn_loss": 0.1}


@pytest.mark.parametrize("site", ["layer", "ffn"])
def test_roberta_wiring_hidden_states_and_padding(toy_sentences, site):
    task, model, crit = build_sentence(
        toy_sentences["classification"],
        extra=["--kl-weight", "0", "--attn-weight", "0", "--hidden-weight", "1", "--hidden-site", site],
    )
    sample = first_batch(task)
    pad = sample["net_input"]["src_tokens"].eq(task.source_dictionary.pad())
    assert pad.any()
    model.train()
    torch.manual_seed(7)
    _, _, log = crit(model, sample)
    layers = model.encoder.sentence_encoder.layers
    hooked = list(layers) if site == "layer" else [layer.fc2 for layer in layers]
    states, _ = hooked_forward(crit, model, sample, {"enc": hooked}, **HEAD)
    assert len(states["enc"]) == 2
    ones = torch.ones(pad.shape[0])  # each sentence counts once
    sums = [masked_mse(h, pad, ones) for h in states["enc"]]
    expected = torch.stack([s[0] for s in sums]).mean()
    torch.testing.assert_close(log["hidden_loss"], expected, rtol=1e-5, atol=1e-7)
    assert (torch.stack([s[1] for s in sums]).mean() - expected).abs() > 1e-3 * expected


@pytest.mark.parametrize(
    "hidden, site, all_states, fc2_hooked",
    [
        (False, "layer", False, False),
        (False, "ffn", False, False),
        (True, "ffn", False, True),
        (True, "layer", True, False),
    ],
)
def test_roberta_records_only_what_the_weights_ask_for(toy_sentences, hidden, site, all_states, fc2_hooked):
    """RoBERTa returns every layer's states only for the layer site's hidden term (its forward's own
    default is not to), and the FFN outputs are hooked only for the FFN site's: an attention-only
    record keeps neither alive."""
    from lrdrop.records import RecordSpec

    task, model, _ = build_sentence(toy_sentences["classification"])
    sample = first_batch(task)
    encoder = model.encoder.sentence_encoder
    seen = {}
    spies = [
        encoder.register_forward_hook(lambda _m, _i, out: seen.update(states=len(out["encoder_states"]))),
        # at fc2's call, its hooks are the spy and whatever recording added
        encoder.layers[0].fc2.register_forward_hook(lambda m, _i, _o: seen.update(fc2_hooks=len(m._forward_hooks))),
    ]
    model.train()
    spec = RecordSpec(hidden=hidden, hidden_site=site, attn_types=("encoder_self",))
    try:
        records = model(**sample["net_input"], lrdrop_record=spec, **HEAD)[1]["lrdrop"]
    finally:
        for h in spies:
            h.remove()
    assert seen["states"] == (len(encoder.layers) + 1 if all_states else 0)
    assert seen["fc2_hooks"] == (2 if fc2_hooked else 1)
    assert ("encoder_states" in records) is hidden
    assert len(records["attn"]["encoder_self"]) == len(encoder.layers)


def test_roberta_wiring_self_attention_ignores_padded_queries(toy_sentences):
    task, model, crit = build_sentence(toy_sentences["classification"], extra=["--kl-weight", "0"])
    sample = first_batch(task)
    pad = sample["net_input"]["src_tokens"].eq(task.source_dictionary.pad())
    model.train()
    torch.manual_seed(7)
    _, _, log = crit(model, sample)
    _, (_, extra) = hooked_forward(crit, model, sample, {}, **HEAD)
    assert list(extra["lrdrop"]["attn"]) == ["encoder_self"]
    per_layer, unmasked = [], []
    for r in extra["lrdrop"]["attn"]["encoder_self"]:
        p, q = r.probs().chunk(2, dim=1)
        per_query = (0.5 * ((p - q) * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(-1)).mean(0)
        masked, total = per_sentence_sum(per_query, pad, torch.ones(pad.shape[0]))
        per_layer.append(masked), unmasked.append(total)
    expected = torch.stack(per_layer).mean()
    torch.testing.assert_close(log["attn_loss"], expected, rtol=1e-4, atol=1e-7)
    assert (torch.stack(unmasked).mean() - expected).abs() > 1e-3 * expected


def test_bart_classification_head_wiring(toy_sentences):
    """BART reads the input twice: the encoder's padding masks its states, the padding of
    prev_output_tokens (the input rolled by one, so the same positions) the decoder's."""
    task, model, crit = build_sentence(
        toy_sentences["classification"],
        arch="bart_lrdrop_base",
        extra=[
            "--add-prev-output-tokens",
            "--kl-weight",
            "0",
            "--attn-weight",
            "0",
            "--hidden-weight",
            "1",
            "--hidden-site",
            "layer",
        ],  # fmt: skip
    )
    sample = first_batch(task)
    src_pad = sample["net_input"]["src_tokens"].eq(task.source_dictionary.pad())
    dec_pad = sample["net_input"]["prev_output_tokens"].eq(task.source_dictionary.pad())
    assert src_pad.any() and dec_pad.any()
    model.train()
    torch.manual_seed(7)
    _, _, log = crit(model, sample)
    states, _ = hooked_forward(
        crit, model, sample, {"enc": list(model.encoder.layers), "dec": list(model.decoder.layers)}, **HEAD
    )
    ones = torch.ones(src_pad.shape[0])
    sums = [masked_mse(h, src_pad, ones) for h in states["enc"]]
    sums += [masked_mse(h, dec_pad, ones) for h in states["dec"]]
    expected = torch.stack([s[0] for s in sums]).mean()
    torch.testing.assert_close(log["hidden_loss"], expected, rtol=1e-5, atol=1e-7)
    decoder_unmasked = torch.stack([s[0] for s in sums[:2]] + [s[1] for s in sums[2:]]).mean()
    assert (decoder_unmasked - expected).abs() > 1e-3 * expected


@pytest.mark.parametrize(
    "data, arch, criterion, extra, message",
    [
        ("regression", "roberta_lrdrop", None, [*REGRESSION, "--kl-weight", "1"], "--prediction-mse-weight"),
        ("classification", "roberta_lrdrop", None, ["--prediction-mse-weight", "1"], "--kl-weight"),
        ("classification", "roberta_lrdrop", None, ["--hidden-weight", "-1"], "--hidden-weight must be >= 0"),
    ],
)
def test_bad_flags_are_refused_at_build(toy_sentences, data, arch, criterion, extra, message):
    with pytest.raises(LRDropConfigError, match=message.replace("-", r"\-")):
        build_sentence(
            toy_sentences[data], arch=arch, criterion=criterion or "lr_drop_sentence_prediction", extra=extra
        )


@pytest.mark.parametrize(
    "arch, extra, message",
    [
        ("roberta_lrdrop", ["--attn-types", "decoder_self"], "encoder-only"),
        ("roberta_lrdrop", ["--attn-types", "encoder_self,encoder_decoder"], "encoder-only"),
        ("roberta", [], "roberta_lrdrop_base"),
    ],
)
def test_terms_the_model_cannot_record_are_refused_at_the_first_step(toy_sentences, arch, extra, message):
    task, model, crit = build_sentence(toy_sentences["classification"], arch=arch, extra=extra)
    model.train()
    with pytest.raises(LRDropConfigError, match=message):
        crit(model, first_batch(task))


def test_eval_is_fairseqs_single_pass(toy_sentences):
    # validation: fairseq's sentence_prediction criterion on the undoubled batch, nothing added
    from fairseq.criterions.sentence_prediction import SentencePredictionCriterion

    task, model, crit = build_sentence(toy_sentences["classification"])
    sample = first_batch(task)
    model.eval()
    with torch.no_grad():
        loss, sample_size, log = crit(model, sample)
        ref_loss, ref_size, ref_log = SentencePredictionCriterion.forward(crit, model, sample)
    assert sample_size == ref_size == sample["target"].numel()
    torch.testing.assert_close(loss, ref_loss)
    assert log["ncorrect"] == ref_log["ncorrect"] and "objective" not in log and "kl_loss" not in log


def test_plain_roberta_trains_with_output_consistency_only(toy_sentences):
    task, model, crit = build_sentence(
        toy_sentences["classification"], arch="roberta", extra=["--hidden-weight", "0", "--attn-weight", "0"]
    )
    model.train()
    loss, _, log = crit(model, first_batch(task))
    assert log["kl_loss"].item() > 0 and "attn_loss" not in log
    loss.backward()


def test_official_roberta_checkpoint_restores_strictly_and_exports(toy_sentences, tmp_path):
    data = toy_sentences["classification"]
    official, plain = random_official_roberta(data, tmp_path / "model.pt")
    adam = ["--optimizer", "adam", "--lr", "1e-5"]
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=sentence_args(data, extra=adam))
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    assert type(model).__name__ == "RobertaLRDropModel"
    trainer = Trainer(cfg, task, model, task.build_criterion(cfg.criterion))
    trainer.load_checkpoint(str(tmp_path / "model.pt"), reset_optimizer=True, reset_lr_scheduler=True)
    loaded = model.state_dict()
    assert set(loaded) - set(official) == {k for k in loaded if k.startswith("classification_heads.")}
    for k, v in official.items():
        assert torch.equal(loaded[k], v), k
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    # fairseq's own computation at inference: the plain model with these weights gives the same outputs
    plain.load_state_dict(loaded, strict=True)
    plain.eval(), model.eval()
    task.load_dataset("train")
    net_input = first_batch(task)["net_input"]
    with torch.no_grad():
        ours, theirs = model(**net_input, **HEAD)[0], plain(**net_input, **HEAD)[0]
    assert torch.equal(ours, theirs)

    from lrdrop_fairseq.export import to_plain_fairseq

    ckpt = tmp_path / "lrdrop.pt"
    checkpoint_utils.torch_persistent_save({"cfg": cfg, "model": loaded, "args": None}, str(ckpt))
    exported = to_plain_fairseq(torch.load(str(ckpt), map_location="cpu", weights_only=False))
    assert exported["cfg"]["model"]["arch"] == "roberta"
    assert exported["cfg"]["criterion"]["_name"] == "sentence_prediction"
    assert not {"kl_weight", "attn_weight", "prediction_mse_weight"} & set(exported["cfg"]["criterion"])


def test_roberta_layerdrop_is_refused_with_layer_terms(toy_sentences):
    """RoBERTa's layers are at encoder.sentence_encoder.layers: the guard reads the model's own
    stacks, so LayerDrop is refused before a step records fewer layers than it selected (one
    rank raising at a random step would leave the others hanging)."""
    task, model, crit = build_sentence(toy_sentences["classification"], extra=["--encoder-layerdrop", "0.5"])
    model.train()
    with pytest.raises(LRDropConfigError, match="LayerDrop.*Set --encoder-layerdrop 0"):
        crit(model, first_batch(task))
    task, model, crit = build_sentence(
        toy_sentences["classification"],
        extra=["--encoder-layerdrop", "0.5", "--hidden-weight", "0", "--attn-weight", "0"],
    )
    model.train()
    assert crit(model, first_batch(task))[2]["kl_loss"] > 0  # the output KL works with LayerDrop
