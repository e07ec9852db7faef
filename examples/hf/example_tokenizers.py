"""What the examples share: a hub checkpoint's own tokenizer behind the small interface the scripts
use (``pad_token_id``, ``encode``, ``encode_target``, ``decode``), the same as this project's
sentencepiece model for models built from scratch (:class:`SpmTokenizer`)."""

import os

import torch


class HubTokenizer:
    def __init__(self, name):
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(name)
        self.pad_token_id = self.tok.pad_token_id

    def encode(self, text, max_length):
        return self.tok(text, max_length=max_length, truncation=True)["input_ids"]

    def encode_target(self, text, max_length):
        return self.tok(text_target=text, max_length=max_length, truncation=True)["input_ids"]

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=True)


class SpmTokenizer:
    """This project's joint sentencepiece model as ids for a model built here: the pieces, then pad
    and </s> (the model's decoder starts from pad, as Marian's does)."""

    def __init__(self, path):
        import sentencepiece as spm

        self.path = path
        self.sp = spm.SentencePieceProcessor(model_file=path)
        self.pad_token_id = self.sp.get_piece_size()
        self.eos_token_id = self.pad_token_id + 1
        self.vocab_size = self.pad_token_id + 2

    def encode(self, text, max_length):
        return self.sp.encode(text)[: max_length - 1] + [self.eos_token_id]

    padding_side = "right"

    def decode(self, ids):
        return self.sp.decode([i for i in ids if 0 <= i < self.pad_token_id])

    def save_pretrained(self, directory, **_):
        """Beside the model the Trainer saves: the sentencepiece model it reads with."""
        import shutil

        shutil.copy(self.path, os.path.join(directory, "spm.model"))

    def pad(self, features, return_tensors="pt", **_):
        """What ``DataCollatorForSeq2Seq`` asks of a tokenizer: the inputs right-padded, their mask."""
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.tensor([list(f["input_ids"]) + [self.pad_token_id] * (longest - len(f["input_ids"]))
                            for f in features])  # fmt: skip
        return {"input_ids": ids, "attention_mask": (ids != self.pad_token_id).long()}
