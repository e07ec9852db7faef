"""lrdrop-benchmark-hf: what the LR-Drop loss costs in Hugging Face Transformers, against R-Drop and
the model's own loss (the baseline), for a Marian, a BART and a Llama built from configs (nothing
downloaded; the Llama with grouped key/value heads, its layers twice the others' count, as a
decoder-only model of the same depth, and its batch the source and target as one sequence).

    lrdrop-benchmark-hf [--models marian,bart,llama] [--shapes 16x32,4x128] [--layers 6] [--dim 512]
                        [--vocab 10000] [--steps 3] [--warmup 1] [--attn-small-map N]
                        [--attn-recompute-in-backward] [--json out.json]

Per model, shape (sentences x tokens per copy, lengths drawn between half and full) and mode: the
median time of an update (forward, backward, Adam step) and what the autograd graph holds for the
backward (``saved_mb``, exact, whatever else runs; the same measure as lrdrop-benchmark's). Modes:
those of lrdrop_cli/modes.py (as in lrdrop-compare, lrdrop-benchmark and the recipes), every term
that a mode turns on at weight 1 (the weights do not change the cost); by default baseline (the
model's own cross-entropy, one copy), rdrop (KL), attn (KL + attention) and lrdrop (KL + hidden at
the FFN output + attention).
"""

import argparse
import json
import statistics
import time

from lrdrop_cli import modes

# mode -> LRDropArguments' options (None: the model's own loss)
MODES = {mode: modes.weights(mode, 1.0, 1.0, 1.0) for mode in modes.MODES}
DEFAULT_MODES = "baseline,rdrop,attn,lrdrop"


def build(name, layers, dim, vocab, dropout=0.1):
    import transformers as T

    common = dict(vocab_size=vocab, d_model=dim, encoder_layers=layers, decoder_layers=layers,
                  encoder_attention_heads=dim // 64, decoder_attention_heads=dim // 64, encoder_ffn_dim=4 * dim,
                  decoder_ffn_dim=4 * dim, max_position_embeddings=512, dropout=dropout, attention_dropout=dropout,
                  pad_token_id=1, eos_token_id=2, decoder_start_token_id=1)  # fmt: skip
    if name == "marian":
        return T.MarianMTModel(T.MarianConfig(**common))
    if name == "llama":
        heads = max(1, dim // 64)
        return T.LlamaForCausalLM(T.LlamaConfig(
            vocab_size=vocab, hidden_size=dim, intermediate_size=4 * dim, num_hidden_layers=2 * layers,
            num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), max_position_embeddings=1024,
            attention_dropout=dropout, pad_token_id=1, eos_token_id=2, bos_token_id=0,
        ))  # fmt: skip
    if name != "bart":
        raise SystemExit(f"unknown --models {name}; choose from {', '.join(MODELS)}")
    return T.BartForConditionalGeneration(T.BartConfig(**common, bos_token_id=0))


MODELS = ("marian", "bart", "llama")


def make_batch(sentences, tokens, vocab, seed=0, causal=False):
    """``sentences`` pairs of ``tokens`` source and target tokens (lengths between half and full); for
    a causal LM, each pair as one right-padded sequence whose source part is a prompt (labels -100)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(tokens // 2, tokens + 1, (sentences,), generator=g)
    ids = torch.randint(5, vocab, (sentences, tokens), generator=g)
    labels = torch.randint(5, vocab, (sentences, tokens), generator=g)
    for i, n in enumerate(lens.tolist()):
        ids[i, n:] = 1
        labels[i, n:] = -100
    if not causal:
        return {"input_ids": ids, "attention_mask": (ids != 1).long(), "labels": labels}
    seqs = torch.full((sentences, 2 * tokens), 1)
    out = torch.full((sentences, 2 * tokens), -100)
    for i, n in enumerate(lens.tolist()):
        seqs[i, :n], seqs[i, n : 2 * n] = ids[i, :n], labels[i, :n]
        out[i, n : 2 * n] = labels[i, :n]
    return {"input_ids": seqs, "attention_mask": (seqs != 1).long(), "labels": out}


def measure(model, batch, mode, steps, warmup, attn_small_map=None, in_backward=False):
    import torch

    from lrdrop_cli.measure.benchmark import saved_for_backward_mb
    from lrdrop_hf import LRDropArguments, LRDropLoss

    model.train()
    if MODES[mode] is None:
        loss_of = lambda: model(**batch).loss  # noqa: E731
    else:
        extra = {} if attn_small_map is None else {"attn_small_map": attn_small_map}
        extra.update({"attn_recompute_in_backward": True} if in_backward else {})
        loss_fn = LRDropLoss(LRDropArguments(**MODES[mode], **extra))
        loss_of = lambda: loss_fn(model, batch)[0]  # noqa: E731
    saved = saved_for_backward_mb(loss_of, exclude=list(model.parameters()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        loss = loss_of()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "times": times, "saved_mb": saved}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="marian,bart", help=f"any of {', '.join(MODELS)} (default: %(default)s)")
    ap.add_argument("--shapes", default="16x32,4x128")
    ap.add_argument("--modes", default=DEFAULT_MODES, help=f"any of {', '.join(MODES)} (default: %(default)s)")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--attn-small-map",
        type=int,
        help="--attn_small_map of the attention modes: 0 hands every map to the recompute path, a huge value "
        "keeps every map (default: LRDropArguments')",
    )
    ap.add_argument(
        "--attn-recompute-in-backward", action="store_true", help="--attn_recompute_in_backward of the attention modes"
    )
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    chosen = modes.choose(a.modes, "--modes", "benchmark-hf", MODES)
    import torch

    rows = []
    print("| model | shape | mode | s / update | x R-Drop time | saved for backward MB | x R-Drop |")
    print("|---|---|---|---|---|---|---|")
    for name in a.models.split(","):
        for shape in a.shapes.split(","):
            sentences, tokens = map(int, shape.split("x"))
            batch = make_batch(sentences, tokens, a.vocab, causal=name == "llama")
            results = {}
            for mode in chosen:
                torch.manual_seed(1)
                model = build(name, a.layers, a.dim, a.vocab)
                results[mode] = measure(
                    model, batch, mode, a.steps, a.warmup, a.attn_small_map, a.attn_recompute_in_backward
                )
            ref = results.get("rdrop")
            for mode, r in results.items():
                rows.append({"model": name, "shape": shape, "mode": mode, **r, "loss_options": MODES[mode]})
                xt = f"{r['median_s'] / ref['median_s']:.2f}" if ref else "-"
                xm = f"{r['saved_mb'] / ref['saved_mb']:.2f}" if ref else "-"
                print(f"| {name} | {shape} | {mode} | {r['median_s']:.3f} | {xt} | {r['saved_mb']:.0f} | {xm} |",
                      flush=True)  # fmt: skip
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"layers": a.layers, "dim": a.dim, "vocab": a.vocab, "threads": torch.get_num_threads(),
                       "attn_small_map": a.attn_small_map, "attn_recompute_in_backward": a.attn_recompute_in_backward,
                       "rows": rows}, f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
