"""sacreBLEU of detokenised hypotheses against references, one sentence per line.

    lrdrop-score-bleu HYPOTHESES REFERENCES [--tokenize 13a]

Prints the score and sacrebleu's signature (report both); refuses files with
different line counts.

  --detok-hyps LANG   detokenise Moses-tokenised hypotheses first (sacremoses)
  --compound-split    the papers' tokenised IWSLT/WMT BLEU: both sides already
                      tokenised, hyphenated compounds split as fairseq's
                      compound_split_bleu.sh does, no further tokenisation
"""

import argparse
import sys

from lrdrop_cli.metrics import bleu, compound_split, read_lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hypotheses")
    ap.add_argument("references")
    ap.add_argument("--tokenize", default="13a", help="sacrebleu tokenizer (default 13a)")
    ap.add_argument("--detok-hyps", metavar="LANG", help="Moses-detokenise the hypotheses first")
    ap.add_argument("--compound-split", action="store_true", help="tokenised, compound-split BLEU")
    a = ap.parse_args(argv)
    try:
        hyps, refs = read_lines(a.hypotheses), read_lines(a.references)
        if a.detok_hyps:
            from sacremoses import MosesDetokenizer

            md = MosesDetokenizer(lang=a.detok_hyps)
            hyps = [md.detokenize(h.split()) for h in hyps]
        tokenize = a.tokenize
        if a.compound_split:
            hyps, refs = [compound_split(h) for h in hyps], [compound_split(r) for r in refs]
            tokenize = "none"
        score, sig = bleu(hyps, refs, tokenize)
    except (ValueError, OSError) as e:
        sys.exit(f"score_bleu: {e}")
    print(f"BLEU = {score.score:.2f}  ({score})")
    print(f"signature: {sig}")


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly, as other CLI tools do
    main()
