#!/usr/bin/env python
"""ROUGE-1/2/L/Lsum of summaries against references, one summary per line.

    lrdrop-score-rouge HYPOTHESES REFERENCES [--no-stemmer] [--json OUT]

Scores with Google's ``rouge-score`` package the way BART and R-Drop report
CNN/DailyMail: F-measure x 100, averaged over summaries, Porter stemming on.
ROUGE-Lsum needs one sentence per line; summaries are split with NLTK's Punkt
algorithm (its untrained default, so nothing is downloaded). A line may also
carry sentence breaks itself as the literal ``<n>`` (the form some CNN/DM
preparations use). Refuses files with different line counts.
"""

import argparse
import json
import sys

from lrdrop_cli.score_bleu import read_lines

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def split_sentences(text: str) -> str:
    """One sentence per line, as rougeLsum expects."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    parts = [p.strip() for p in text.replace("<n>", "\n").split("\n")]
    sents = [s for p in parts if p for s in PunktSentenceTokenizer().tokenize(p)]
    return "\n".join(sents)


def rouge(hyps, refs, use_stemmer=True):
    """Mean F-measure x 100 for each of ROUGE_TYPES over parallel lists of strings."""
    from rouge_score import rouge_scorer

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references: the files must be line-aligned")
    if not hyps:
        raise ValueError("no summaries to score (empty files)")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hyp, ref in zip(hyps, refs):
        scores = scorer.score(split_sentences(ref), split_sentences(hyp))
        for t in ROUGE_TYPES:
            totals[t] += scores[t].fmeasure
    return {t: 100 * totals[t] / len(hyps) for t in ROUGE_TYPES}


def format_scores(scores: dict) -> str:
    return "  ".join(f"{t.replace('rouge', 'ROUGE-')} {v:.2f}" for t, v in scores.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hypotheses")
    ap.add_argument("references")
    ap.add_argument("--no-stemmer", action="store_true", help="score without Porter stemming")
    ap.add_argument("--json", help="also write the scores to this JSON file")
    a = ap.parse_args()
    try:
        hyps = read_lines(a.hypotheses)
        scores = rouge(hyps, read_lines(a.references), use_stemmer=not a.no_stemmer)
    except (ValueError, OSError) as e:
        sys.exit(f"score_rouge: {e}")
    print(
        f"{format_scores(scores)}   (F1 x 100, {len(hyps)} summaries, "
        f"rouge-score, stemmer {'off' if a.no_stemmer else 'on'})"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump({t: round(v, 2) for t, v in scores.items()}, f, indent=1)


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly, as other CLI tools do
    main()
