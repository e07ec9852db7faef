#!/usr/bin/env python
"""Instruction-style translation by a causal language model with LR-Drop: each pair becomes a
prompt and its answer, ``Translate German to English.\\nGerman: {source}\\nEnglish:`` then the
target and </s>; the loss trains the answer only (the prompt's labels are -100), the layer terms
compare the two copies at every real token, prompt included (docs/huggingface.md). Greedy or beam
search from the prompts (left-padded), sacreBLEU at the end.

Offline, from scratch (a small Llama built from a config, this project's sentencepiece model)::

    python examples/hf/run_causal_translation.py --data_dir runs/demo/corpus --spm_model runs/demo/spm/spm.model \\
        --source_lang de --target_lang en --output_dir runs/hf-llama --max_steps 2000 \\
        --per_device_train_batch_size 64 --train_sampling_strategy group_by_length --learning_rate 3e-3 \\
        --warmup_steps 150 --kl_weight 1 --use_cpu

A pretrained causal LM where the hub is reachable (its own tokenizer), with LoRA on its attention::

    python examples/hf/run_causal_translation.py --model_name_or_path Qwen/Qwen2.5-0.5B --lora_r 16 \\
        --data_dir DIR --output_dir runs/qwen-lrdrop --learning_rate 2e-4 --kl_weight 1

``--data_dir`` holds ``{train,valid,test}.{SRC,TGT}``, one sentence a line. Writes
OUTPUT_DIR/test.hyp.TGT and OUTPUT_DIR/test_results.json (sacreBLEU and chrF with signatures).
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Optional

import torch
from datasets import DatasetDict
from transformers import (
    DataCollatorForSeq2Seq,
    HfArgumentParser,
    LlamaConfig,
    LlamaForCausalLM,
    TrainingArguments,
    set_seed,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # example_common
from example_common import SpmTokenizer, read_split, score_and_write  # noqa: E402

from lrdrop_hf import LRDropArguments, LRDropTrainer

PROMPT = "Translate {src_name} to {tgt_name}.\n{src_name}: {source}\n{tgt_name}:"
NAMES = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch"}


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "a pretrained causal LM (hub name or folder); default: a small Llama"}
    )
    spm_model: Optional[str] = field(
        default=None, metadata={"help": "without --model_name_or_path: the joint sentencepiece model to use"}
    )
    layers: int = field(default=2, metadata={"help": "from scratch: decoder layers"})
    hidden_size: int = field(default=128, metadata={"help": "from scratch: model width (FFN 4x, 4 heads, 2 KV heads)"})
    dropout: float = field(default=0.1, metadata={"help": "from scratch: attention dropout (Llama's only one)"})
    lora_r: int = field(default=0, metadata={"help": "> 0: train LoRA adapters of this rank on q/k/v/o only"})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA's dropout (a source of the two copies' gap)"})


@dataclass
class DataArguments:
    data_dir: str = field(metadata={"help": "folder with {train,valid,test}.{source_lang,target_lang}"})
    source_lang: str = field(default="de")
    target_lang: str = field(default="en")
    max_length: int = field(default=160, metadata={"help": "prompt + answer tokens, at most"})
    max_new_tokens: int = field(default=64)
    max_train_samples: Optional[int] = field(default=None)
    max_test_samples: Optional[int] = field(default=None)
    num_beams: int = field(default=1)
    generation_batch_size: int = field(default=64)


class PromptTokenizer:
    """A tokenizer behind the interface the script uses: ``prompt`` and ``answer`` ids, ``pad``
    (DataCollatorForSeq2Seq's), ``decode``; this project's sentencepiece model, or a hub model's."""

    padding_side = "right"

    def __init__(self, spm_model=None, hub_name=None):
        if hub_name:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(hub_name)
            if self.tok.pad_token_id is None:
                self.tok.pad_token = self.tok.eos_token
            self.pad_token_id, self.eos_token_id = self.tok.pad_token_id, self.tok.eos_token_id
            self._encode = lambda text: self.tok(text, add_special_tokens=False)["input_ids"]
            self._decode = lambda ids: self.tok.decode(ids, skip_special_tokens=True)
            self.vocab_size = len(self.tok)
        else:
            self.sp = SpmTokenizer(spm_model)
            self.pad_token_id, self.eos_token_id = self.sp.pad_token_id, self.sp.eos_token_id
            self._encode = self.sp.sp.encode
            self._decode = self.sp.decode
            self.vocab_size = self.sp.vocab_size

    def prompt(self, source, d: "DataArguments"):
        text = PROMPT.format(src_name=NAMES.get(d.source_lang, d.source_lang),
                             tgt_name=NAMES.get(d.target_lang, d.target_lang), source=source)  # fmt: skip
        return self._encode(text)

    def answer(self, target):
        return self._encode(" " + target) + [self.eos_token_id]

    def decode(self, ids):
        return self._decode([i for i in ids if i not in (self.pad_token_id, self.eos_token_id)]).strip()

    def pad(self, features, return_tensors="pt", **_):
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.tensor([list(f["input_ids"]) + [self.pad_token_id] * (longest - len(f["input_ids"]))
                            for f in features])  # fmt: skip
        mask = torch.tensor([[1] * len(f["input_ids"]) + [0] * (longest - len(f["input_ids"])) for f in features])
        return {"input_ids": ids, "attention_mask": mask}

    def save_pretrained(self, directory, **_):
        if hasattr(self, "tok"):
            self.tok.save_pretrained(directory)
        else:
            self.sp.save_pretrained(directory)


def build_model(m: ModelArguments, tok: PromptTokenizer, d: DataArguments):
    if m.model_name_or_path:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(m.model_name_or_path)
    else:
        config = LlamaConfig(
            vocab_size=tok.vocab_size, hidden_size=m.hidden_size, intermediate_size=4 * m.hidden_size,
            num_hidden_layers=m.layers, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=d.max_length + d.max_new_tokens, attention_dropout=m.dropout,
            pad_token_id=tok.pad_token_id, bos_token_id=None, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
        )  # fmt: skip
        model = LlamaForCausalLM(config)
    if m.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=m.lora_r, lora_alpha=2 * m.lora_r, lora_dropout=m.lora_dropout, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])  # fmt: skip
        model = get_peft_model(model, lora)
    return model


@torch.no_grad()
def translate(model, tok, prompts, d: DataArguments, device):
    """Greedy (or beam) continuations of ``prompts`` (id lists), left-padded in batches, decoded."""
    model.eval()
    hyps = []
    for start in range(0, len(prompts), d.generation_batch_size):
        chunk = prompts[start : start + d.generation_batch_size]
        longest = max(map(len, chunk))
        ids = torch.tensor([[tok.pad_token_id] * (longest - len(p)) + p for p in chunk], device=device)
        mask = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in chunk], device=device)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=d.max_new_tokens,
                             num_beams=d.num_beams, do_sample=False, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)  # fmt: skip
        hyps += [tok.decode(row[longest:].tolist()) for row in out]
    return hyps


def build_parser():
    return HfArgumentParser((ModelArguments, DataArguments, TrainingArguments, LRDropArguments))


def main(argv=None):
    m, d, training, lrdrop_args = build_parser().parse_args_into_dataclasses(args=argv)
    set_seed(training.seed)
    if not m.model_name_or_path and not m.spm_model:
        raise SystemExit("give --model_name_or_path, or --spm_model (e.g. runs/demo/spm/spm.model) to train one")
    tok = PromptTokenizer(m.spm_model, m.model_name_or_path)
    model = build_model(m, tok, d)
    raw = DatasetDict({s: read_split(d.data_dir, d.source_lang, d.target_lang, s) for s in ("train", "valid", "test")})
    if d.max_train_samples:
        raw["train"] = raw["train"].select(range(min(d.max_train_samples, len(raw["train"]))))
    if d.max_test_samples:
        raw["test"] = raw["test"].select(range(min(d.max_test_samples, len(raw["test"]))))

    def encode(example):
        prompt, answer = tok.prompt(example["source"], d), tok.answer(example["target"])
        ids = (prompt + answer)[: d.max_length]
        labels = ([-100] * len(prompt) + answer)[: d.max_length]  # the answer is what is trained
        return {"input_ids": ids, "labels": labels}

    data = raw.map(encode, remove_columns=["source", "target"])
    collator = DataCollatorForSeq2Seq(getattr(tok, "tok", tok), label_pad_token_id=-100)
    training.remove_unused_columns = False
    trainer = LRDropTrainer(
        model=model, args=training, train_dataset=data["train"], eval_dataset=data["valid"], data_collator=collator,
        lrdrop_args=lrdrop_args,
    )  # fmt: skip
    trainer.train()
    trainer.save_model()
    prompts = [tok.prompt(s, d) for s in raw["test"]["source"]]
    hyps = translate(trainer.model, tok, prompts, d, training.device)
    refs = list(raw["test"]["target"])
    return score_and_write("run_causal_translation", training.output_dir, d.target_lang, hyps, refs, lrdrop_args)


if __name__ == "__main__":
    main()
