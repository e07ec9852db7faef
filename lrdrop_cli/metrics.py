"""The scores the tools report: sacreBLEU's BLEU and chrF (with their signatures), the
papers' compound-split tokenised BLEU, and ROUGE as BART and R-Drop report it."""

import re

COMPOUND = re.compile(r"(\S)-(\S)")


def compound_split(line: str) -> str:
    # one pass, with the same non-overlapping semantics as the perl s{...}{...}g it mirrors
    return COMPOUND.sub(r"\1 ##AT##-##AT## \2", line)


def bleu(hyps, refs, tokenize="13a"):
    """(sacrebleu BLEUScore, signature string) for parallel lists of strings."""
    from sacrebleu.metrics import BLEU

    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references: the files must be line-aligned")
    metric = BLEU(tokenize=tokenize)
    score = metric.corpus_score(hyps, [refs])
    return score, str(metric.get_signature())


def chrf(hyps, refs):
    """sacreBLEU's corpus chrF (character 6-grams, beta 2) and its signature."""
    import sacrebleu

    metric = sacrebleu.CHRF()
    return metric.corpus_score(hyps, [refs]), str(metric.get_signature())


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


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
