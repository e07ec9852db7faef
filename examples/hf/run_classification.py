#!/usr/bin/env python
"""Sentence classification (GLUE-style) with LR-Drop, in the shape of transformers'
``examples/pytorch/text-classification/run_glue.py``: ``TrainingArguments`` plus
:class:`lrdrop_hf.LRDropArguments`, ``datasets`` built from local files, accuracy and macro-F1 at
the end (Pearson r with ``--regression``).

Offline, from scratch (a small BERT built from a config, a sentencepiece model trained on the
texts), e.g. on the Debian sections of ``lrdrop-build-debian-sections``::

    python examples/hf/run_classification.py --data_dir DIR --output_dir runs/hf-cls --max_steps 1200 \\
        --per_device_train_batch_size 32 --learning_rate 1e-3 --kl_weight 1

A pretrained encoder where the hub is reachable: ``--model_name_or_path roberta-base``.

``--data_dir`` holds ``{train,valid,test}.input0`` (one text a line) and ``{split}.label`` (one
label a line: a class name, or a number with ``--regression``), the layout of this project's
GLUE helpers and of fairseq's GLUE data. Writes OUTPUT_DIR/test_results.json.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import torch
from datasets import Dataset, DatasetDict
from transformers import BertConfig, BertForSequenceClassification, HfArgumentParser, TrainingArguments, set_seed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # example_common
from example_common import HubTokenizer  # noqa: E402

from lrdrop_hf import LRDropArguments, LRDropTrainer


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "a pretrained encoder; default: a small BERT"}
    )
    vocab_size: int = field(default=4000, metadata={"help": "from scratch: sentencepiece pieces"})
    layers: int = field(default=2)
    hidden_size: int = field(default=128)
    dropout: float = field(default=0.1)


@dataclass
class DataArguments:
    data_dir: str = field(metadata={"help": "folder with {train,valid,test}.input0 and .label"})
    regression: bool = field(default=False, metadata={"help": "numeric labels, one output, MSE"})
    max_length: int = field(default=128)


def read_split(d: DataArguments, split):
    texts = open(os.path.join(d.data_dir, f"{split}.input0"), encoding="utf-8").read().splitlines()
    labels = open(os.path.join(d.data_dir, f"{split}.label"), encoding="utf-8").read().splitlines()
    if len(texts) != len(labels):
        raise SystemExit(f"{d.data_dir}/{split}: {len(texts)} texts but {len(labels)} labels")
    return Dataset.from_dict({"text": texts, "label": labels})


class SpmTokenizer:
    """A unigram sentencepiece model trained on the training texts; ids: the pieces, then pad and <s>."""

    def __init__(self, texts, vocab_size, path):
        import sentencepiece as spm

        with open(path + ".txt", "w", encoding="utf-8") as f:
            f.writelines(t + "\n" for t in texts)
        spm.SentencePieceTrainer.train(input=path + ".txt", model_prefix=path, vocab_size=vocab_size,
                                       hard_vocab_limit=False, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
                                       minloglevel=2)  # fmt: skip
        self.sp = spm.SentencePieceProcessor(model_file=path + ".model")
        self.pad_token_id = self.sp.get_piece_size()
        self.cls_token_id = self.pad_token_id + 1
        self.vocab_size = self.pad_token_id + 2

    def encode(self, text, max_length):
        return [self.cls_token_id] + self.sp.encode(text)[: max_length - 1]


def main(argv=None):
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments, LRDropArguments))
    m, d, training, lrdrop_args = parser.parse_args_into_dataclasses(args=argv)
    set_seed(training.seed)
    raw = DatasetDict({split: read_split(d, split) for split in ("train", "valid", "test")})
    names = [] if d.regression else sorted(set(raw["train"]["label"]))
    num_labels = 1 if d.regression else len(names)
    os.makedirs(training.output_dir, exist_ok=True)
    if m.model_name_or_path:
        from transformers import AutoModelForSequenceClassification

        tok = HubTokenizer(m.model_name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(m.model_name_or_path, num_labels=num_labels)
    else:
        tok = SpmTokenizer(raw["train"]["text"], m.vocab_size, os.path.join(training.output_dir, "spm"))
        config = BertConfig(vocab_size=tok.vocab_size, hidden_size=m.hidden_size, num_hidden_layers=m.layers,
                            num_attention_heads=max(1, m.hidden_size // 32), intermediate_size=4 * m.hidden_size,
                            max_position_embeddings=d.max_length, hidden_dropout_prob=m.dropout,
                            attention_probs_dropout_prob=m.dropout, pad_token_id=tok.pad_token_id,
                            num_labels=num_labels)  # fmt: skip
        model = BertForSequenceClassification(config)

    def encode(example):
        label = float(example["label"]) if d.regression else names.index(example["label"])
        return {"input_ids": tok.encode(example["text"], d.max_length), "labels": label}

    data = raw.map(encode, remove_columns=["text", "label"])

    def collate(features):
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.tensor([f["input_ids"] + [tok.pad_token_id] * (longest - len(f["input_ids"])) for f in features])
        labels = torch.tensor([f["labels"] for f in features], dtype=torch.float if d.regression else torch.long)
        return {"input_ids": ids, "attention_mask": (ids != tok.pad_token_id).long(), "labels": labels}

    training.remove_unused_columns = False
    trainer = LRDropTrainer(model=model, args=training, train_dataset=data["train"], eval_dataset=data["valid"],
                            data_collator=collate, lrdrop_args=lrdrop_args)  # fmt: skip
    trainer.train()
    out = trainer.predict(data["test"])
    preds, gold = torch.tensor(out.predictions), torch.tensor(out.label_ids)
    if d.regression:
        p, g = preds.view(-1).double(), gold.view(-1).double()
        result = {"pearson": round(torch.corrcoef(torch.stack([p, g]))[0, 1].item(), 4)}
    else:
        from sklearn.metrics import f1_score

        predicted = preds.argmax(-1)
        result = {"accuracy": round((predicted == gold).float().mean().item() * 100, 2),
                  "macro_f1": round(f1_score(gold, predicted, average="macro") * 100, 2)}  # fmt: skip
    result.update(test_sentences=len(gold), lrdrop=vars(lrdrop_args))
    with open(os.path.join(training.output_dir, "test_results.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"[run_classification] test {', '.join(f'{k} {v}' for k, v in result.items() if k != 'lrdrop')}")
    return result


if __name__ == "__main__":
    main()
