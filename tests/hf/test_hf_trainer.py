"""LRDropSeq2SeqTrainer / LRDropTrainer: a short run learns and logs every term; the loss is
normalised by the Trainer's num_items_in_batch (gradient accumulation, devices)."""

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from models import batch, fixed_halves, tiny  # noqa: E402
from transformers import Seq2SeqTrainingArguments, Trainer, TrainingArguments  # noqa: E402

from lrdrop.options import LRDropConfigError  # noqa: E402
from lrdrop_hf import LRDropArguments, LRDropLoss, LRDropSeq2SeqTrainer, LRDropTrainer  # noqa: E402

ARGS = LRDropArguments(kl_weight=1.0, hidden_weight=1.0, attn_weight=1.0)


def _copy_task(n=64, length=6, seed=0):
    """Reverse the source: fixed-length rows, so the default stacking collates them."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(5, 30, (length,), generator=g)
        ids[-1] = 2
        rows.append({"input_ids": ids, "attention_mask": torch.ones(length, dtype=torch.long),
                     "labels": torch.cat([ids[:-1].flip(0), ids[-1:]])})  # fmt: skip
    return rows


def _stack(features):
    return {k: torch.stack([f[k] for f in features]) for k in features[0]}


def _bert_trainer(tmp_path, average=False):
    """(trainer, model in training mode, a batch): an LRDropTrainer on a tiny BERT classifier."""
    model = tiny("bert", 0.1)
    model.train()
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True,
                             average_tokens_across_devices=average)  # fmt: skip
    return LRDropTrainer(model=model, args=args, lrdrop_args=ARGS), model, batch("bert")


def test_a_short_seq2seq_run_learns_and_logs_every_term(tmp_path):
    torch.manual_seed(0)
    model = tiny("bart", 0.1)
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=16, max_steps=30, learning_rate=5e-3,
        logging_steps=10, report_to=[], use_cpu=True, save_strategy="no", label_smoothing_factor=0.1,
        remove_unused_columns=False, seed=1, disable_tqdm=True,
    )  # fmt: skip
    trainer = LRDropSeq2SeqTrainer(model=model, args=args, train_dataset=_copy_task(), data_collator=_stack,
                                   lrdrop_args=ARGS)  # fmt: skip
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h and "kl_loss" in h]
    assert len(logs) == 3
    assert all(h[t] > 0 for h in logs for t in ("kl_loss", "hidden_loss", "attn_loss", "nll_loss"))
    assert logs[-1]["nll_loss"] < 0.9 * logs[0]["nll_loss"]
    # evaluation is the model's own single pass: no terms, the model's loss
    metrics = trainer.evaluate(eval_dataset=_copy_task(16, seed=1))
    assert "eval_loss" in metrics and not any("kl" in k for k in metrics)


def test_the_loss_is_normalised_by_num_items_in_batch(tmp_path):
    """Under gradient accumulation the Trainer passes the tokens of all micro-batches: the loss is
    then the sum divided by them, so that micro-batches add up to one batch."""
    trainer, model, b = _bert_trainer(tmp_path)
    losses = []
    for items in (None, torch.tensor(3), torch.tensor(12)):
        torch.manual_seed(4)
        losses.append(trainer.compute_loss(model, b, num_items_in_batch=items))
    torch.testing.assert_close(losses[0], losses[1])  # 3 sentences: its own count
    torch.testing.assert_close(losses[2], losses[0] / 4)


@pytest.mark.parametrize("average", [True, False])
def test_the_loss_is_multiplied_by_the_processes_as_the_trainers_own(tmp_path, monkeypatch, average):
    """With average_tokens_across_devices the Trainer divides by every process's tokens and DDP
    averages the gradients, so each process's loss is multiplied by their number (as
    Trainer.compute_loss does); not without it, nor without num_items_in_batch."""
    import accelerate

    monkeypatch.setattr(accelerate.Accelerator, "num_processes", property(lambda self: 2))
    trainer, model, b = _bert_trainer(tmp_path, average)
    for items, factor in ((torch.tensor(12), 2 if average else 1), (None, 1)):
        torch.manual_seed(4)
        got = trainer.compute_loss(model, b, num_items_in_batch=items)
        torch.manual_seed(4)
        want = LRDropLoss(ARGS)(model, b, items)[0]
        torch.testing.assert_close(got, want * factor)
    torch.manual_seed(4)
    loss, outputs = trainer.compute_loss(model, b, return_outputs=True)
    assert loss.dim() == 0 and outputs.logits.shape[0] == 2 * b["input_ids"].shape[0]  # the doubled forward's


def test_the_logged_terms_are_their_means_since_the_last_training_log(tmp_path):
    """Each term in a training log is its mean over the micro-batches since the previous one; an
    evaluation log (no "loss") neither takes them nor resets them."""
    trainer, model, b = _bert_trainer(tmp_path)
    terms = []
    for seed in (4, 5, 6):
        torch.manual_seed(seed)
        trainer.compute_loss(model, b)
        torch.manual_seed(seed)
        terms.append({k: float(v) for k, v in LRDropLoss(ARGS)(model, b)[1].items()})
        if seed == 4:
            trainer.log({"eval_loss": 2.0})  # an evaluation while terms are pending leaves them
            trainer.log({"loss": 1.0})
    trainer.log({"loss": 0.5})
    trainer.log({"loss": 0.4})  # nothing since the last: the loss alone
    evaluation, first, second, empty = trainer.state.log_history[-4:]
    assert set(terms[0]) >= {"kl_loss", "hidden_loss", "attn_loss", "nll_loss", "ce_loss", "attn_sd_encoder_self"}
    for name in terms[0]:
        logged = "loss" if name == "ce_loss" else name  # the task loss per copy is the Trainer's "loss"
        assert first[logged] == pytest.approx(terms[0][name], rel=1e-3, abs=1e-6), name
        assert second[logged] == pytest.approx((terms[1][name] + terms[2][name]) / 2, rel=1e-3, abs=1e-6), name
        assert name not in evaluation and name not in empty
    assert (first["objective"], second["objective"], empty["loss"]) == (1.0, 0.5, 0.4)


def test_several_gpus_in_one_process_are_refused(tmp_path, monkeypatch):
    """Several GPUs in one process: the Trainer would wrap the model in DataParallel, whose
    threaded replicas the hooks cannot tell apart and whose token counts are per GPU. One is fine."""
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    monkeypatch.setattr(TrainingArguments, "n_gpu", property(lambda self: 1))
    LRDropTrainer(model=tiny("bert", 0.1), args=args, lrdrop_args=ARGS)
    monkeypatch.setattr(TrainingArguments, "n_gpu", property(lambda self: 2))
    with pytest.raises(LRDropConfigError, match="torchrun --nproc_per_node 2"):
        LRDropTrainer(model=tiny("bert", 0.1), args=args, lrdrop_args=ARGS)


@pytest.mark.parametrize("getter", ["get_tp_size", "get_cp_size", "get_sp_size"])
def test_tensor_context_and_sequence_parallelism_are_refused(tmp_path, monkeypatch, getter):
    """Heads or tokens split across ranks: no rank holds both copies' whole maps and states, and the
    Trainer divides its loss scale by the tensor-parallel size. Size 1 (data parallelism) is fine."""
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    LRDropTrainer(model=tiny("bert", 0.1), args=args, lrdrop_args=ARGS)
    monkeypatch.setattr(Trainer, getter, lambda self: 2)
    kind = {"get_tp_size": "tensor", "get_cp_size": "context", "get_sp_size": "sequence"}[getter]
    with pytest.raises(LRDropConfigError, match=f"{kind} parallelism over 2 ranks.*data parallelism only"):
        LRDropTrainer(model=tiny("bert", 0.1), args=args, lrdrop_args=ARGS)


def test_gradient_accumulation_adds_up_to_one_batch(tmp_path, monkeypatch):
    """One SGD update from 2 accumulated micro-batches of 2 sentences equals one from the batch of
    4: the Trainer passes the 4 sentences' target tokens to each micro-batch's loss and does not
    divide by the steps again (model_accepts_loss_kwargs). Target lengths differ by sentence, so a
    per-micro-batch normalisation would differ; the halves differ without dropout."""
    fixed_halves(monkeypatch.setattr)
    rows = _copy_task(4)
    for i, row in enumerate(rows):
        row["labels"] = row["labels"].clone()
        if i:
            row["labels"][6 - i :] = -100  # 6, 5, 4 and 3 target tokens
    params = []
    for per_device, accumulation in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = tiny("bart", 0.0)
        args = Seq2SeqTrainingArguments(
            output_dir=str(tmp_path / str(accumulation)), per_device_train_batch_size=per_device,
            gradient_accumulation_steps=accumulation, max_steps=1, learning_rate=1.0, optim="sgd",
            lr_scheduler_type="constant", report_to=[], use_cpu=True, save_strategy="no",
            remove_unused_columns=False, seed=1, disable_tqdm=True,
        )  # fmt: skip
        LRDropSeq2SeqTrainer(model=model, args=args, train_dataset=rows, data_collator=_stack,
                             lrdrop_args=ARGS).train()  # fmt: skip
        params.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    torch.manual_seed(0)
    start = torch.cat([p.detach().reshape(-1) for p in tiny("bart", 0.0).parameters()])
    assert (params[0] - start).abs().max() > 1e-3  # it did move
    torch.testing.assert_close(params[1], params[0], rtol=1e-4, atol=1e-6)


def test_a_data_parallel_model_is_refused_with_layer_terms_only():
    model = tiny("bert", 0.1)
    model.train()
    b = batch("bert")
    with pytest.raises(LRDropConfigError, match="DataParallel"):
        LRDropLoss(ARGS)(torch.nn.DataParallel(model), b)
    rdrop = LRDropArguments(kl_weight=1.0, hidden_weight=0.0, attn_weight=0.0)
    torch.manual_seed(1)
    got = LRDropLoss(rdrop)(torch.nn.DataParallel(model), b)[0]
    torch.manual_seed(1)
    torch.testing.assert_close(got, LRDropLoss(rdrop)(model, b)[0])  # R-Drop alone: the gathered outputs
