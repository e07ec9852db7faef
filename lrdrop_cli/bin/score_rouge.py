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

from lrdrop_cli.metrics import format_scores, read_lines, rouge


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hypotheses")
    ap.add_argument("references")
    ap.add_argument("--no-stemmer", action="store_true", help="score without Porter stemming")
    ap.add_argument("--json", help="also write the scores to this JSON file")
    a = ap.parse_args(argv)
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
