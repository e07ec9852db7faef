"""What both examples share: a hub checkpoint's own tokenizer behind the small interface the scripts
use (``pad_token_id``, ``encode``, ``encode_target``, ``decode``), the same as their sentencepiece
tokenizers for models built from scratch."""


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
