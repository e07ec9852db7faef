#!/usr/bin/env python
"""Fine-tune or train a translation model with LR-Drop, in the shape of transformers'
``examples/pytorch/translation/run_translation.py``: ``Seq2SeqTrainingArguments`` plus
:class:`lrdrop_hf.LRDropArguments`, ``datasets`` built from local files, ``DataCollatorForSeq2Seq``,
beam search by the Trainer (``predict_with_generate``), sacreBLEU at the end.

Offline, from scratch (a small Marian built from a config, this project's sentencepiece model)::

    python examples/hf/run_translation.py --data_dir runs/demo/corpus --spm_model runs/demo/spm/spm.model \\
        --source_lang de --target_lang en --output_dir runs/hf-demo --max_steps 1000 \\
        --per_device_train_batch_size 64 --train_sampling_strategy group_by_length --learning_rate 3e-3 \\
        --warmup_steps 150 --label_smoothing_factor 0.1 \\
        --kl_weight 1    # and LR-Drop's default layer weights: hidden 0.1 (FFN output), attention 0.1

(``group_by_length``: batches of similar lengths, as fairseq's; random batches of this corpus are
padded to 4.3x their tokens.)

A pretrained checkpoint where the hub is reachable (its own tokenizer)::

    python examples/hf/run_translation.py --model_name_or_path Helsinki-NLP/opus-mt-de-en --data_dir DIR \\
        --source_lang de --target_lang en --output_dir runs/opus-lrdrop --learning_rate 2e-5 --kl_weight 0.7

``--data_dir`` holds ``{train,valid,test}.{SRC,TGT}``, one sentence a line (what
``lrdrop-demo --data-only`` and the corpus builders write). Writes OUTPUT_DIR/test.hyp.TGT and
OUTPUT_DIR/test_results.json (sacreBLEU and chrF with their signatures).
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
    MarianConfig,
    MarianMTModel,
    Seq2SeqTrainingArguments,
    set_seed,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # example_common
from example_common import HubTokenizer, SpmTokenizer, read_split, score_and_write  # noqa: E402

from lrdrop_hf import LRDropArguments, LRDropSeq2SeqTrainer


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "a pretrained seq2seq model (hub name or folder); default: a small Marian"}
    )
    spm_model: Optional[str] = field(
        default=None, metadata={"help": "without --model_name_or_path: the joint sentencepiece model to use"}
    )
    layers: int = field(default=2, metadata={"help": "from scratch: encoder and decoder layers"})
    d_model: int = field(default=128, metadata={"help": "from scratch: model width (FFN 4x, 4 heads)"})
    dropout: float = field(default=0.1, metadata={"help": "from scratch: dropout and attention dropout"})


@dataclass
class DataArguments:
    data_dir: str = field(metadata={"help": "folder with {train,valid,test}.{source_lang,target_lang}"})
    source_lang: str = field(default="de")
    target_lang: str = field(default="en")
    max_source_length: int = field(default=128)
    max_target_length: int = field(default=128)
    max_train_samples: Optional[int] = field(default=None)
    max_test_samples: Optional[int] = field(default=None)
    num_beams: int = field(default=5)


def build_model(m: ModelArguments, d: DataArguments):
    """(tokenizer, model): the pretrained ones, or a small Marian from a config with this project's
    sentencepiece model."""
    if m.model_name_or_path:
        return HubTokenizer(m.model_name_or_path), MarianMTModel.from_pretrained(m.model_name_or_path)
    if not m.spm_model:
        raise SystemExit("give --model_name_or_path, or --spm_model (e.g. runs/demo/spm/spm.model) to train one")
    tok = SpmTokenizer(m.spm_model)
    # fairseq's transformer, as the fairseq demo trains it: ReLU FFN (the paper's HS(x)), token
    # embeddings ~ N(0, 1/d) scaled by sqrt(d), projections Xavier-uniform (queries, keys and values
    # with gain 1/sqrt(2)), biases 0. With MarianConfig's defaults (every weight N(0, 0.02),
    # embeddings unscaled: the tokens 1/35 of the sinusoidal positions, the scores q.k ~100x
    # smaller than fairseq's) the LibreOffice example's encoder-decoder attention stayed flat
    # (score sd 0.03-0.08 nats over 100-400 steps; fairseq's 0.2-0.7 over 100-300 updates).
    config = MarianConfig(
        vocab_size=tok.vocab_size, d_model=m.d_model, encoder_layers=m.layers, decoder_layers=m.layers,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=4 * m.d_model,
        decoder_ffn_dim=4 * m.d_model, max_position_embeddings=max(d.max_source_length, d.max_target_length),
        dropout=m.dropout, attention_dropout=m.dropout, activation_dropout=0.0, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        share_encoder_decoder_embeddings=True, activation_function="relu", scale_embedding=True,
    )  # fmt: skip
    model = MarianMTModel(config)
    with torch.no_grad():
        for name, module in model.model.named_modules():
            if isinstance(module, torch.nn.Linear):
                gain = 2**-0.5 if name.endswith(("q_proj", "k_proj", "v_proj")) else 1.0
                torch.nn.init.xavier_uniform_(module.weight, gain=gain)
                if module.bias is not None:
                    torch.nn.init.zeros_(module.bias)
        shared = model.get_input_embeddings().weight
        shared.normal_(0.0, m.d_model**-0.5)
        shared[tok.pad_token_id].zero_()
    return tok, model


def build_parser():
    return HfArgumentParser((ModelArguments, DataArguments, Seq2SeqTrainingArguments, LRDropArguments))


def main(argv=None):
    m, d, training, lrdrop_args = build_parser().parse_args_into_dataclasses(args=argv)
    set_seed(training.seed)
    tok, model = build_model(m, d)
    raw = DatasetDict({s: read_split(d.data_dir, d.source_lang, d.target_lang, s) for s in ("train", "valid", "test")})
    if d.max_train_samples:
        raw["train"] = raw["train"].select(range(min(d.max_train_samples, len(raw["train"]))))
    if d.max_test_samples:
        raw["test"] = raw["test"].select(range(min(d.max_test_samples, len(raw["test"]))))
    encode_target = getattr(tok, "encode_target", tok.encode)

    def encode(example):
        return {"input_ids": tok.encode(example["source"], d.max_source_length),
                "labels": encode_target(example["target"], d.max_target_length)}  # fmt: skip

    data = raw.map(encode, remove_columns=["source", "target"])

    collator = DataCollatorForSeq2Seq(getattr(tok, "tok", tok), model=model, label_pad_token_id=-100)
    training.remove_unused_columns = False
    training.predict_with_generate = True  # test: beam search through the Trainer
    training.generation_num_beams = d.num_beams
    training.generation_max_length = d.max_target_length
    trainer = LRDropSeq2SeqTrainer(
        model=model, args=training, train_dataset=data["train"], eval_dataset=data["valid"], data_collator=collator,
        lrdrop_args=lrdrop_args,
    )  # fmt: skip
    trainer.train()
    trainer.save_model()
    # test: beam search, detokenised, sacreBLEU and chrF with their signatures
    predictions = trainer.predict(data["test"]).predictions  # padded with -100 across batches
    hyps = [tok.decode([int(i) for i in ids if i >= 0]) for ids in predictions]
    refs = list(raw["test"]["target"])
    return score_and_write("run_translation", training.output_dir, d.target_lang, hyps, refs, lrdrop_args)


if __name__ == "__main__":
    main()
