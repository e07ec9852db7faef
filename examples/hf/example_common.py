"""What the examples share: a hub checkpoint's own tokenizer behind the small interface the scripts
use (``pad_token_id``, ``encode``, ``encode_target``, ``decode``), the same as this project's
sentencepiece model for models built from scratch (:class:`SpmTokenizer`), and the reader of a
parallel corpus's splits (:func:`read_split`)."""

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


def read_split(data_dir, source_lang, target_lang, split):
    """``{split}.{source_lang}`` and ``{split}.{target_lang}`` under ``data_dir`` (one sentence a line)
    as a ``datasets.Dataset`` of ``source`` and ``target``."""
    from datasets import Dataset

    sides = {}
    for lang in (source_lang, target_lang):
        with open(os.path.join(data_dir, f"{split}.{lang}"), encoding="utf-8") as f:
            sides[lang] = f.read().splitlines()
    if len(sides[source_lang]) != len(sides[target_lang]):
        raise SystemExit(f"{data_dir}/{split}.*: the two sides have different line counts")
    return Dataset.from_dict({"source": sides[source_lang], "target": sides[target_lang]})


def score_and_write(name, output_dir, target_lang, hyps, refs, lrdrop_args):
    """sacreBLEU's BLEU and chrF of ``hyps`` against ``refs`` with their signatures, written with the
    hypotheses (OUTPUT_DIR/test.hyp.TGT, OUTPUT_DIR/test_results.json) and printed; the result."""
    import json

    import sacrebleu

    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    result = {
        "bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": round(chrf.corpus_score(hyps, [refs]).score, 2),
        "chrf_signature": str(chrf.get_signature()),
        "test_sentences": len(refs),
        "lrdrop": vars(lrdrop_args),
    }
    with open(os.path.join(output_dir, f"test.hyp.{target_lang}"), "w", encoding="utf-8") as f:
        f.writelines(h + "\n" for h in hyps)
    with open(os.path.join(output_dir, "test_results.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"[{name}] test sacreBLEU {result['bleu']} ({result['bleu_signature']}), chrF {result['chrf']}")
    return result
