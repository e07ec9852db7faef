"""LRDropSeq2SeqTrainer / LRDropTrainer: a short run learns and logs every term; the loss is
normalised by the Trainer's num_items_in_batch (gradient accumulation, devices)."""

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
from models import batch, tiny  # noqa: E402
from transformers import Seq2SeqTrainingArguments, TrainingArguments  # noqa: E402

from lrdrop_hf import LRDropArguments, LRDropSeq2SeqTrainer, LRDropTrainer  # noqa: E402

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
    model = tiny("bert", 0.1)
    model.train()
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, average_tokens_across_devices=False)
    trainer = LRDropTrainer(model=model, args=args, lrdrop_args=ARGS)
    b = batch("bert")
    losses = []
    for items in (None, torch.tensor(3), torch.tensor(12)):
        torch.manual_seed(4)
        losses.append(trainer.compute_loss(model, b, num_items_in_batch=items))
    torch.testing.assert_close(losses[0], losses[1])  # 3 sentences: its own count
    torch.testing.assert_close(losses[2], losses[0] / 4)
