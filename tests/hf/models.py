"""Tiny Hugging Face models built from configs (nothing downloaded) and a batch with padding."""

import torch

transformers = __import__("transformers")

SEQ2SEQ = ("bart", "marian", "mbart", "pegasus", "t5")
CLASSIFIERS = ("bert", "roberta")
CAUSAL = ("gpt2", "llama", "qwen2", "mistral")
PAD = 1


def tiny(kind, dropout=0.1, **extra):
    T = transformers
    if kind in ("bart", "marian", "mbart", "pegasus"):
        cls_config, cls_model = {"bart": (T.BartConfig, T.BartForConditionalGeneration),
                                 "marian": (T.MarianConfig, T.MarianMTModel),
                                 "mbart": (T.MBartConfig, T.MBartForConditionalGeneration),
                                 "pegasus": (T.PegasusConfig, T.PegasusForConditionalGeneration)}[kind]  # fmt: skip
        config = cls_config(
            vocab_size=60, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
            dropout=dropout, attention_dropout=dropout, activation_dropout=dropout, pad_token_id=PAD,
            bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, **extra,
        )  # fmt: skip
        return cls_model(config)
    if kind == "t5":
        config = T.T5Config(vocab_size=60, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2,
                            num_heads=2, dropout_rate=dropout, pad_token_id=PAD, eos_token_id=2,
                            decoder_start_token_id=PAD, **extra)  # fmt: skip
        return T.T5ForConditionalGeneration(config)
    if kind == "mt5":
        config = T.MT5Config(vocab_size=60, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2,
                             num_heads=2, dropout_rate=dropout, pad_token_id=PAD, eos_token_id=2,
                             decoder_start_token_id=PAD, **extra)  # fmt: skip
        return T.MT5ForConditionalGeneration(config)
    if kind == "gpt2":
        config = T.GPT2Config(vocab_size=60, n_embd=16, n_layer=2, n_head=2, n_positions=64, resid_pdrop=dropout,
                              embd_pdrop=dropout, attn_pdrop=dropout, pad_token_id=PAD, bos_token_id=0,
                              eos_token_id=2, initializer_range=0.2, **extra)  # fmt: skip
        return T.GPT2LMHeadModel(config)
    if kind in ("llama", "qwen2", "mistral"):
        # grouped key/value heads (4 query heads, 2 key/value heads), rotary positions; Mistral with a
        # 3-token sliding window, shorter than the batch's sentences
        cls_config, cls_model = {"llama": (T.LlamaConfig, T.LlamaForCausalLM),
                                 "qwen2": (T.Qwen2Config, T.Qwen2ForCausalLM),
                                 "mistral": (T.MistralConfig, T.MistralForCausalLM)}[kind]  # fmt: skip
        window = {"sliding_window": 3} if kind == "mistral" else {}
        config = cls_config(vocab_size=60, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                            attention_dropout=dropout, pad_token_id=PAD, initializer_range=0.2, **window,
                            **extra)  # fmt: skip
        return cls_model(config)
    cls_config, cls_model = {"bert": (T.BertConfig, T.BertForSequenceClassification),
                             "roberta": (T.RobertaConfig, T.RobertaForSequenceClassification)}[kind]  # fmt: skip
    config = cls_config(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, pad_token_id=PAD,
                        **{"num_labels": 3, **extra})  # fmt: skip
    return cls_model(config)


def batch(kind, seed=0):
    """Three sentences of different lengths (source padding), targets of different lengths (-100)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (3, 6), generator=g)
    ids[:, -1] = 2
    ids[1, 3:] = PAD
    ids[1, 2] = 2
    ids[2, 5:] = PAD
    ids[2, 4] = 2
    out = {"input_ids": ids, "attention_mask": (ids != PAD).long()}
    if kind in CAUSAL:  # right padding; the first two tokens a prompt the loss does not train on
        labels = ids.masked_fill(ids == PAD, -100)
        labels[0, :2] = -100
        out["labels"] = labels
        return out
    if kind in CLASSIFIERS:
        out["labels"] = torch.tensor([0, 2, 1])
        return out
    labels = torch.randint(5, 60, (3, 5), generator=g)
    labels[0, 4:] = -100
    labels[2, 2:] = -100
    out["labels"] = labels
    return out


def fixed_halves(setattr_like):
    """Make lrdrop.consistency.double lower the second copy's word ids above 4 by one: the halves
    then differ without dropout masks (which two processes, or two runs, cannot share; the fairseq
    tests' tests/integration/fixed_halves). ``setattr_like``: monkeypatch.setattr, or setattr."""
    from lrdrop import consistency as C

    real = C.double

    def double(x):
        if torch.is_tensor(x) and x.dtype == torch.long and x.dim() == 2:
            return torch.cat([x, torch.where(x > 4, x - 1, x)])
        return real(x)

    setattr_like(C, "double", double)
