"""Write a tiny synthetic parallel corpus (for smoke runs and tests).

The "translation" maps each source word ``sN`` to ``tN`` and reverses the
order, so a small model can learn it in a few hundred updates; sentence
lengths vary so that batches carry padding.

    lrdrop-make-toy-corpus OUT_DIR [--train 2000 --valid 100 --test 100 --seed 1]

writes OUT_DIR/{train,valid,test}.{src,tgt}. With ``--classification`` it writes a
sentence-prediction corpus instead, in the layout of fairseq's GLUE data:
OUT_DIR/{split}.input0 (the source sentences), {split}.label (1 if the first word is
in the lower half of the vocabulary, else 0: integer labels, as fairseq's --report-mcc
needs) and {split}.score (regression: the share of words in the lower half).
"""

import os
import random


def make_pair(rng: random.Random, vocab: int, min_len: int, max_len: int):
    words = [rng.randrange(vocab) for _ in range(rng.randint(min_len, max_len))]
    return " ".join(f"s{w}" for w in words), " ".join(f"t{w}" for w in reversed(words))


def write_corpus(
    out_dir, sizes=(("train", 2000), ("valid", 100), ("test", 100)), vocab=40, min_len=3, max_len=12, seed=1
):
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    for split, n in sizes:
        pairs = [make_pair(rng, vocab, min_len, max_len) for _ in range(n)]
        for side, idx in (("src", 0), ("tgt", 1)):
            with open(os.path.join(out_dir, f"{split}.{side}"), "w", encoding="utf-8") as f:
                f.writelines(p[idx] + "\n" for p in pairs)
    return out_dir


def write_classification_corpus(
    out_dir, sizes=(("train", 2000), ("valid", 100), ("test", 100)), vocab=40, min_len=3, max_len=12, seed=1
):
    rng = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    for split, n in sizes:
        rows = [[rng.randrange(vocab) for _ in range(rng.randint(min_len, max_len))] for _ in range(n)]
        files = {
            "input0": [" ".join(f"s{w}" for w in words) for words in rows],
            "label": [str(int(words[0] < vocab // 2)) for words in rows],
            "score": [f"{sum(w < vocab // 2 for w in words) / len(words):.4f}" for words in rows],
        }
        for name, lines in files.items():
            with open(os.path.join(out_dir, f"{split}.{name}"), "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
    return out_dir
