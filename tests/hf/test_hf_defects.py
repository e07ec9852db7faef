"""The Hugging Face adapter in ordinary use: each defect of the issue "The Hugging Face adapter for
the models people fine-tune" (../shared/hf_probes), as a test that failed before its fix."""

import gc
import tempfile
import weakref

import pytest
import torch
import transformers as T
from models import CAUSAL, SEQ2SEQ, batch, tiny

from lrdrop.options import KL_WEIGHT, SENTENCE_KL_WEIGHT, LRDropConfigError
from lrdrop_hf import LRDropArguments, LRDropLoss, LRDropTrainer
from lrdrop_hf.layout import FAMILIES, layout_of
from lrdrop_hf.recording import Recorder


def layer_args(**kw):
    return LRDropArguments(**{"kl_weight": 0.0, "hidden_weight": 1.0, "attn_weight": 1.0, **kw})


def _grads(model, args, seed=3):
    model.train()
    torch.manual_seed(seed)
    loss, _, _ = LRDropLoss(args)(model, batch("bart"))
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def test_reentrant_gradient_checkpointing_is_refused_and_non_reentrant_is_exact():
    """Reentrant checkpointing kept the terms' value and lost their gradient (it equalled the
    CE-only one): refused, naming use_reentrant=False, with which the gradient is the exact one."""
    torch.manual_seed(0)
    model = tiny("bart", 0.1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    exact = _grads(model, layer_args())
    model.zero_grad()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.testing.assert_close(_grads(model, layer_args()), exact, rtol=1e-5, atol=1e-7)
    reentrant = tiny("bart", 0.1)
    reentrant.load_state_dict(state)
    reentrant.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(LRDropConfigError, match="use_reentrant': False"):
        _grads(reentrant, layer_args())
    _grads(reentrant, layer_args(hidden_weight=0.0, attn_weight=0.0, kl_weight=1.0))  # R-Drop reads only outputs


def _umt5():
    cfg = T.UMT5Config(vocab_size=60, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=2,
                       pad_token_id=1, eos_token_id=2, decoder_start_token_id=1)  # fmt: skip
    return T.UMT5ForConditionalGeneration(cfg)


def _fsmt():
    cfg = T.FSMTConfig(langs=["en", "de"], src_vocab_size=60, tgt_vocab_size=60, d_model=16, encoder_layers=2,
                       decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                       decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                       decoder_start_token_id=2)  # fmt: skip
    return T.FSMTForConditionalGeneration(cfg)


@pytest.mark.parametrize("build, model_type", [(_umt5, "umt5"), (_fsmt, "fsmt")])
def test_look_alike_families_are_refused_by_model_type(build, model_type):
    """UMT5 has T5's module names (and returned wrong maps), FSMT has BART's (and failed with a
    shape error): the table of model types refuses both by name, before any forward."""
    with pytest.raises(LRDropConfigError, match=f"model_type '{model_type}'.*bart, mbart"):
        layout_of(build())


@pytest.mark.parametrize("kind", ["bart", "t5", "bert", "gpt2", "llama"])
def test_the_ffn_site_is_fairseqs_the_output_of_the_module_the_table_names(kind):
    """The hidden site ``ffn`` is the FFN sublayer's output before its dropout and the residual, as
    fairseq's fc2 (lrdrop_fairseq/models/recording.py): the recorded state is the output of the
    module FAMILIES names, of the model's width (fc1's output would be the FFN's inner width)."""
    model = tiny(kind, 0.1)
    model.train()
    name = FAMILIES[model.config.model_type].ffn
    assert name == {"bart": "fc2", "t5": "layer.-1.DenseReluDense", "bert": "output.dense", "gpt2": "mlp.c_proj",
                    "llama": "mlp.down_proj"}[kind]  # fmt: skip
    layout = layout_of(model)
    side = "decoder" if kind in CAUSAL else "encoder"
    layer = (layout.decoder_layers if side == "decoder" else layout.encoder_layers)[0]
    module = {"t5": lambda: layer.layer[-1].DenseReluDense}.get(kind, lambda: layer.get_submodule(name))()
    assert layout.ffn(layer) is module
    seen = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    loss = LRDropLoss(layer_args(attn_weight=0.0))
    b = batch(kind)
    inputs = {k: v for k, v in b.items() if k != "labels"}
    if kind in SEQ2SEQ:
        inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=b["labels"])
    with Recorder(loss.layout(model), loss.record_spec) as rec:
        model(**{k: torch.cat([v, v]) for k, v in inputs.items()})
    handle.remove()
    width = getattr(model.config, "d_model", None) or model.config.hidden_size
    assert rec.states[side][0].shape[-1] == width
    assert rec.states[side][0] is seen[0]


def _bart_classifier():
    cfg = T.BartConfig(vocab_size=60, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                       pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=3)  # fmt: skip
    return T.BartForSequenceClassification(cfg)


def test_encoder_decoder_sequence_heads_train_with_rdrop_and_refuse_layer_terms_clearly():
    model = _bart_classifier()
    model.train()
    loss, logs, _ = LRDropLoss(LRDropArguments(hidden_weight=0.0, attn_weight=0.0))(model, batch("bert"))
    assert torch.isfinite(loss) and float(logs["kl_loss"]) > 0
    with pytest.raises(LRDropConfigError, match="sequence head.*R-Drop alone"):
        LRDropLoss(layer_args())(model, batch("bert"))


def test_the_layout_cache_keeps_no_model_alive():
    """model_init / hyperparameter_search build a model per trial: a trial's model (and its layers)
    is freed when it is gone, and a new one gets its own layout."""
    fn = LRDropLoss(layer_args(attn_weight=0.0))
    model = tiny("bart", 0.1)
    model.train()
    fn(model, batch("bart"))
    ref_model, ref_layer = weakref.ref(model), weakref.ref(model.model.encoder.layers[0])
    del model
    gc.collect()
    assert ref_model() is None and ref_layer() is None
    other = tiny("bart", 0.1)
    other.train()
    fn(other, batch("bart"))
    assert fn.layout(other).encoder_layers[0] is other.model.encoder.layers[0]


@pytest.mark.parametrize("kind, expected", [("bert", SENTENCE_KL_WEIGHT), ("bart", KL_WEIGHT)])
def test_the_kl_weight_defaults_by_head_as_fairseqs_criteria(kind, expected):
    """A sequence classifier's output KL weighs 1 (fairseq's lr_drop_sentence_prediction), a token
    head's 5 (lr_drop's, R-Drop's IWSLT alpha); a given weight is kept either way."""
    model = tiny(kind, 0.1)
    model.train()
    fn = LRDropLoss(LRDropArguments(hidden_weight=0.0, attn_weight=0.0))
    fn(model, batch(kind))
    assert fn.output_weights["kl_loss"] == expected
    given = LRDropLoss(LRDropArguments(kl_weight=3.0, hidden_weight=0.0, attn_weight=0.0))
    given(model, batch(kind))
    assert given.output_weights["kl_loss"] == 3.0


def test_training_forwards_build_no_key_value_cache():
    model = tiny("bart", 0.1)
    model.train()
    _, _, out = LRDropLoss(LRDropArguments(hidden_weight=0.0, attn_weight=0.0))(model, batch("bart"))
    assert out.past_key_values is None


def _trainer(model, **kw):
    args = T.TrainingArguments(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, **kw)
    return LRDropTrainer(model=model, args=args, lrdrop_args=LRDropArguments(hidden_weight=0.0, attn_weight=0.0))


def test_multi_output_regression_is_normalised_alike_by_the_trainer_and_the_function():
    """Three outputs per sentence: the Trainer's num_items_in_batch counts 9 labels; the function's
    own normaliser counts the same (it counted 3 sentences, a loss 3x the Trainer's)."""
    model = tiny("bert", 0.1, problem_type="regression")
    model.train()
    b = batch("bert")
    b["labels"] = torch.randn(3, 3)
    trainer = _trainer(model)
    n = trainer._get_num_items_in_batch([b], "cpu")
    assert int(n) == 9
    torch.manual_seed(0)
    own = LRDropLoss(trainer.lrdrop_args)(model, b)[0]
    torch.manual_seed(0)
    via = trainer.compute_loss(model, b, num_items_in_batch=n)
    torch.testing.assert_close(own, via)


def test_compute_loss_func_is_refused_not_ignored():
    with pytest.raises(LRDropConfigError, match="compute_loss_func"):
        LRDropTrainer(model=tiny("bert"), args=T.TrainingArguments(output_dir=tempfile.mkdtemp(), report_to=[],
                      use_cpu=True), compute_loss_func=lambda outputs, labels, num_items_in_batch=None: 0)  # fmt: skip


def test_eval_loss_is_label_smoothed_as_a_plain_trainers():
    model = tiny("bart", 0.1)
    b = batch("bart")
    b["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=b["labels"])  # as the collator
    data = [{k: v[i] for k, v in b.items()} for i in range(3)]
    ours = _trainer(model, label_smoothing_factor=0.1, per_device_eval_batch_size=3)
    plain = T.Trainer(model=model, args=ours.args)
    assert ours.evaluate(data)["eval_loss"] == pytest.approx(plain.evaluate(data)["eval_loss"], rel=1e-6)
    unsmoothed = _trainer(model, per_device_eval_batch_size=3).evaluate(data)["eval_loss"]
    assert abs(ours.evaluate(data)["eval_loss"] - unsmoothed) > 1e-3


def test_the_training_log_gives_the_per_copy_loss_and_small_terms_their_digits(monkeypatch):
    """``loss`` is the task loss of one copy (a baseline's scale, fairseq's convention), the whole
    objective is ``objective``; a term of 9e-6 keeps its significant digits."""
    trainer = _trainer(tiny("bert", 0.1))
    trainer._lrdrop_sums = {"ce_loss": torch.tensor(2.4), "kl_loss": torch.tensor(1.8e-5), "nll_loss": torch.tensor(2)}
    trainer._lrdrop_steps = 2
    seen = {}
    monkeypatch.setattr(T.Trainer, "log", lambda self, logs, *a, **k: seen.update(logs))
    trainer.log({"loss": 5.0, "learning_rate": 1e-3})
    assert seen["objective"] == 5.0 and seen["loss"] == pytest.approx(1.2)
    assert seen["kl_loss"] == pytest.approx(9e-6, rel=1e-3) and seen["nll_loss"] == 1.0


def _lora(model, targets, **kw):
    peft = pytest.importorskip("peft")
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=targets, **{"lora_dropout": 0.0, **kw}))
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5, generator=torch.Generator().manual_seed(1))  # a trained adapter's delta
    return wrapped


def test_lora_on_the_projections_reaches_the_attention_term_on_either_map_path():
    """LoRA on q_proj/k_proj: the recompute path (large maps) rebuilt the maps from the frozen base
    weights, 5e-6 against 0.15 from the projections' outputs, and the LoRA weights got 1e-5 of their
    gradient. The maps are now read after the projections (the attention interface's query and
    key), LoRA's delta included, on either path."""
    torch.manual_seed(0)
    model = _lora(tiny("bart", 0.1), ["q_proj", "k_proj"])
    model.train()
    got = {}
    for small in (2**40, 0):  # every map kept / every map on the recompute path
        torch.manual_seed(5)
        loss, logs, _ = LRDropLoss(layer_args(hidden_weight=0.0, attn_small_map=small))(model, batch("bart"))
        model.zero_grad()
        loss.backward()
        lora = {n: p.grad.clone() for n, p in model.named_parameters() if "lora_A" in n}
        got[small] = (float(logs["attn_loss"]), lora)
    assert got[0][0] == pytest.approx(got[2**40][0], rel=1e-6) and got[0][0] > 0.01
    for name, grad in got[2**40][1].items():
        torch.testing.assert_close(got[0][1][name], grad)
        assert grad.abs().sum() > 0.01, name


def test_a_peft_wrapped_encoder_classifier_trains_with_the_layer_terms():
    model = _lora(tiny("bert", 0.1), ["query", "value"], task_type="SEQ_CLS")
    model.train()
    loss, logs, _ = LRDropLoss(layer_args(kl_weight=1.0))(model, batch("bert"))
    loss.backward()
    assert float(logs["hidden_loss"]) > 0 and float(logs["attn_loss"]) > 0


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_causal_lms_train_with_rdrop_shifting_labels_as_their_own_loss(kind):
    """Without dropout the loss is both copies' cross-entropy, each the model's own (labels shifted
    inside the model); with it, R-Drop's formula on the shifted tokens, on the same dropout masks."""
    b = batch(kind)
    rdrop = LRDropArguments(kl_weight=2.0, hidden_weight=0.0, attn_weight=0.0)
    model = tiny(kind, 0.0)
    model.train()
    loss, logs, out = LRDropLoss(rdrop)(model, b)
    torch.testing.assert_close(loss, 2 * model(**b).loss, rtol=1e-5, atol=1e-6)
    assert float(logs["kl_loss"]) == pytest.approx(0.0, abs=1e-7) and out.past_key_values is None
    model = tiny(kind, 0.1)
    model.train()
    torch.manual_seed(7)
    loss, logs, _ = LRDropLoss(rdrop)(model, b)
    torch.manual_seed(7)
    doubled = {k: torch.cat([v, v]) for k, v in b.items() if k != "labels"}
    logits = model(**doubled, use_cache=False).logits[:, :-1].float()
    target = torch.cat([b["labels"], b["labels"]])[:, 1:]
    pad = target.eq(-100)
    lp = torch.log_softmax(logits, -1)
    ce = -lp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1).masked_fill(pad, 0).sum()
    p, q = lp.chunk(2)
    kl = ((p.exp() - q.exp()) * (p - q)).sum(-1).masked_fill(pad.chunk(2)[0], 0).sum() / 2
    n = (~pad.chunk(2)[0]).sum()
    torch.testing.assert_close(loss, (ce + 2.0 * kl) / n, rtol=1e-5, atol=1e-6)
    assert float(logs["kl_loss"]) > 0


@pytest.mark.parametrize("kind", CAUSAL)
def test_a_causal_lms_layer_terms_read_every_real_token_and_weigh_by_the_trained_ones(kind, layer_terms_calls):
    """The hidden and self-attention terms of a causal LM compare the copies at every real token
    (attention_mask 1, the prompt's included: the same layers read it), each sentence's mean over
    them counted as its trained tokens (shifted labels, as its CE): the prompt-only sentence below
    weighs 0 in every term."""
    model = tiny(kind, 0.1)
    model.train()
    b = batch(kind)
    b["labels"][1] = -100  # sentence 1: a prompt only, nothing trained
    torch.manual_seed(0)
    loss, logs, _ = LRDropLoss(layer_args())(model, b)
    loss.backward()
    call = layer_terms_calls[0]
    assert set(call["pads"]) == {"decoder"} and torch.equal(call["pads"]["decoder"], b["attention_mask"] == 0)
    assert call["units"].tolist() == b["labels"][:, 1:].ne(-100).sum(1).tolist() and call["units"][1] == 0
    assert set(call["records"]["attn"]) == {"decoder_self"} and len(call["records"]["decoder_states"]) == 2
    assert float(logs["hidden_loss"]) > 0 and float(logs["attn_loss"]) > 0
    # what stands in sentence 1 changes no term: it weighs 0
    other = {k: v.clone() for k, v in b.items()}
    other["input_ids"][1, :2] = 7
    torch.manual_seed(0)
    _, logs2, _ = LRDropLoss(layer_args())(model, other)
    for t in ("hidden_loss", "attn_loss"):
        assert float(logs2[t]) == pytest.approx(float(logs[t]), rel=1e-5), t


def test_a_causal_families_other_heads_are_refused_with_layer_terms():
    cfg = tiny("llama").config
    cfg.num_labels = 3
    with pytest.raises(LRDropConfigError, match="LlamaForSequenceClassification.*causal language model"):
        LRDropLoss(layer_args())(T.LlamaForSequenceClassification(cfg), {**batch("bert")})


def test_under_the_trainer_a_causal_lm_is_normalised_by_the_trainers_count():
    """The loss alone divides by the shifted target tokens (10 here); under the Trainer by its
    num_items_in_batch, as the model's own loss is: transformers counts labels[..., 1:] only when the
    model's loss_type says it shifts, and a model built from a config has none, so it counts all 12."""
    model = tiny("gpt2")
    model.train()
    b = batch("gpt2")
    trainer = _trainer(model)
    n = trainer._get_num_items_in_batch([b], "cpu")
    shifted = int(b["labels"][:, 1:].ne(-100).sum())
    assert shifted == 10 and int(n) in (10, 12)
    torch.manual_seed(0)
    own = LRDropLoss(trainer.lrdrop_args)(model, b)[0]
    torch.manual_seed(0)
    torch.testing.assert_close(trainer.compute_loss(model, b, num_items_in_batch=n) * n, own * shifted)
    assert trainer.lrdrop_loss.output_weights["kl_loss"] == KL_WEIGHT  # a token head's default


def test_a_model_without_dropout_is_warned_about_at_the_first_step(caplog):
    """Dropout 0 everywhere (TRL's disable_dropout, or a config): the copies are one model and every
    term is 0; said once, at the first step. With dropout (LoRA's only, on a dropout-free base), not."""
    with caplog.at_level("WARNING", logger="lrdrop_hf.loss"):
        loss = LRDropLoss(layer_args(kl_weight=1.0))
        model = tiny("llama", 0.0)
        model.train()
        for _ in range(2):
            loss(model, batch("llama"))
    assert caplog.text.count("no dropout is active in LlamaForCausalLM") == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="lrdrop_hf.loss"):
        lora = _lora(tiny("llama", 0.0), ["q_proj", "v_proj"], task_type="CAUSAL_LM", lora_dropout=0.1)
        lora.train()
        _, logs, _ = LRDropLoss(layer_args(kl_weight=1.0))(lora, batch("llama"))
    assert "no dropout" not in caplog.text and float(logs["kl_loss"]) > 0
