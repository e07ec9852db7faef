"""The tools' models and schedules as data: what the demos and the comparisons train.

Each preset was measured on the machine it names (README "The built-in demo",
docs/results.md); change one here and every pipeline that uses it follows.
"""

TRANSLATION_CPU = [
    "--encoder-layers", "2", "--decoder-layers", "2",
    "--encoder-embed-dim", "128", "--decoder-embed-dim", "128",
    "--encoder-ffn-embed-dim", "512", "--decoder-ffn-embed-dim", "512",
    "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
]  # fmt: skip
# The 6+6-layer 512-dim model learned nothing in 1,500 updates at the CPU's lr and
# only slowly at 7e-4; 3+3 layers, 256-dim, fp16 reached valid ppl 27.4 / BLEU 4.4
# in 2,800 updates on an H100 (docs/results.md, "The GPU demo model").
TRANSLATION_GPU = [
    "--encoder-layers", "3", "--decoder-layers", "3",
    "--encoder-embed-dim", "256", "--decoder-embed-dim", "256",
    "--encoder-ffn-embed-dim", "1024", "--decoder-ffn-embed-dim", "1024",
    "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
    "--fp16",
]  # fmt: skip
# optimisation defaults of the translation demo and lrdrop-compare, measured per device:
# README "Demo" (CPU) and docs/results.md (GPU sweep)
TRAINING_DEFAULTS = {
    "cpu": dict(dropout=0.1, lr=3e-3, warmup=150, max_tokens=1536),
    "cuda": dict(dropout=0.3, lr=1e-3, warmup=300, max_tokens=4096),
}

# summarization: bart_base's layout (post-norm, learned positions, layernorm on embeddings,
# GELU, shared embeddings) at the translation demo's shapes on CPU; bart_base as it is
# (6+6 layers, 768-dim, still from scratch) on a GPU
SUMMARIZATION_CPU = TRANSLATION_CPU
SUMMARIZATION_GPU = []
# CNN/DM's decoding (beam 4, lenpen 2.0, no-repeat-ngram 3) with lengths for one-line synopses
SUMMARIZATION_DECODING = [
    "--beam", "4", "--lenpen", "2.0", "--no-repeat-ngram-size", "3",
    "--min-len", "3", "--max-len-a", "0", "--max-len-b", "30",
]  # fmt: skip
TRANSLATION_DECODING = ["--beam", "5"]

# classification: a 2-layer RoBERTa encoder from scratch
CLASSIFICATION = [
    "--encoder-layers", "2", "--encoder-embed-dim", "128",
    "--encoder-ffn-embed-dim", "512", "--encoder-attention-heads", "4",
]  # fmt: skip
