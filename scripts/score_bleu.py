#!/usr/bin/env python
"""sacreBLEU of detokenised hypotheses against references, one sentence per line.

    python scripts/score_bleu.py HYPOTHESES REFERENCES [--tokenize 13a]

Prints the score and sacrebleu's signature (report both); refuses files with
different line counts.
"""
import argparse
import sys


def bleu(hyps, refs, tokenize="13a"):
    """(sacrebleu BLEUScore, signature string) for parallel lists of strings."""
    from sacrebleu.metrics import BLEU

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references: the files must be line-aligned")
    metric = BLEU(tokenize=tokenize)
    score = metric.corpus_score(hyps, [refs])
    return score, str(metric.get_signature())


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hypotheses")
    ap.add_argument("references")
    ap.add_argument("--tokenize", default="13a", help="sacrebleu tokenizer (default 13a)")
    a = ap.parse_args()
    try:
        score, sig = bleu(read_lines(a.hypotheses), read_lines(a.references), a.tokenize)
    except (ValueError, OSError) as e:
        sys.exit(f"score_bleu: {e}")
    print(f"BLEU = {score.score:.2f}  ({score})")
    print(f"signature: {sig}")


if __name__ == "__main__":
    main()
