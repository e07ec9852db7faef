"""BLEU as the tools score it: known values, lrdrop-score-bleu's flags on hand-scored lines."""

import pytest
from conftest import run, tool

from lrdrop_cli.metrics import bleu


def test_bleu_known_values():
    refs = ["the cat sat on the mat", "a dog barks"]
    assert bleu(refs, refs)[0].score == pytest.approx(100.0)
    assert bleu(["xyz qqq", "uuu"], refs)[0].score == pytest.approx(0.0)
    # one 4-word hypothesis against a 6-word reference: precisions 4/4, 3/3, 2/2, 1/1,
    # brevity penalty exp(1 - 6/4)
    score, sig = bleu(["the cat sat on"], ["the cat sat on the mat"])
    assert score.score == pytest.approx(100 * 2.718281828 ** (1 - 6 / 4), rel=1e-4)
    assert "nrefs:1" in sig and "tok:13a" in sig
    with pytest.raises(ValueError, match="line-aligned"):
        bleu(["a"], ["a", "b"])


def test_score_bleu_cli_refuses_mismatched_files(tmp_path):
    (tmp_path / "h").write_text("a b c\n")
    (tmp_path / "r").write_text("a b c\nd e f\n")
    p = run([tool("lrdrop-score-bleu"), str(tmp_path / "h"), str(tmp_path / "r")], check=False)
    assert p.returncode != 0 and "1 hypotheses but 2 references" in p.stdout
    assert "Traceback" not in p.stdout


def test_compound_split_as_fairseq_does():
    from lrdrop_cli.metrics import compound_split

    assert (
        compound_split("a well-known state-of-the-art x - y")
        == "a well ##AT##-##AT## known state ##AT##-##AT## of ##AT##-##AT## the ##AT##-##AT## art x - y"
    )


def score_bleu_cli(tmp_path, capsys, hyps, refs, *flags):
    """lrdrop-score-bleu in-process on two written files: (BLEU, signature) as it prints them."""
    from lrdrop_cli.bin import score_bleu

    (tmp_path / "hyp").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref").write_text("\n".join(refs) + "\n", encoding="utf-8")
    score_bleu.main([str(tmp_path / "hyp"), str(tmp_path / "ref"), *flags])
    out = capsys.readouterr().out.splitlines()
    return float(out[0].split()[2]), out[1].removeprefix("signature: ")


def test_score_bleu_compound_split(tmp_path, capsys):
    """Both sides split at hyphens, no further tokenisation: 'the well ##AT##-##AT## known man'
    against '... woman' matches 4/5, 3/4, 2/3, 1/2 n-grams, equal lengths, BLEU 100 x 0.2^(1/4).
    Unsplit, 13a keeps 'well-known' one token and the score is 0."""
    args = (["the well-known man"], ["the well-known woman"])
    score, sig = score_bleu_cli(tmp_path, capsys, *args, "--compound-split")
    assert score == pytest.approx(100 * 0.2**0.25, abs=0.01) and "tok:none" in sig
    assert score_bleu_cli(tmp_path, capsys, *args)[0] == 0.0


def test_score_bleu_detokenises_moses_hypotheses(tmp_path, capsys):
    """Moses-tokenised, escaped output ('don &apos;t') becomes the reference's 'don't': 100.
    Scored as it is, 13a splits the escape and the score drops."""
    args = (["I don &apos;t know ."], ["I don't know."])
    assert score_bleu_cli(tmp_path, capsys, *args, "--detok-hyps", "en")[0] == 100.0
    assert score_bleu_cli(tmp_path, capsys, *args)[0] < 20


def test_score_bleu_tokenize_reaches_sacrebleu(tmp_path, capsys):
    """'a b c d e.' against 'a b c d e .': 13a splits the period (100); with --tokenize none the
    hypothesis has 5 tokens, 4/5, 3/4, 2/3, 1/2 matches and brevity penalty exp(1 - 6/5)."""
    args = (["a b c d e."], ["a b c d e ."])
    score, sig = score_bleu_cli(tmp_path, capsys, *args, "--tokenize", "none")
    assert score == pytest.approx(100 * 0.2**0.25 * 2.718281828 ** (1 - 6 / 5), abs=0.01) and "tok:none" in sig
    score, sig = score_bleu_cli(tmp_path, capsys, *args)
    assert score == 100.0 and "tok:13a" in sig


def test_chrf_by_hand():
    """sacreBLEU's chrF as the tools use it: identical lines 100, no shared character 0, and
    "abc" against "abd" 7/18 (character n-gram precision and recall (2/3 + 1/2 + 0) / 3 each,
    beta 2), with its signature."""
    from lrdrop_cli.metrics import chrf

    assert chrf(["the same line"], ["the same line"])[0].score == pytest.approx(100.0)
    assert chrf(["xyz"], ["abc"])[0].score == pytest.approx(0.0)
    score, signature = chrf(["abc"], ["abd"])
    assert score.score == pytest.approx(100 * 7 / 18) and signature.startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0")


def test_read_lines_keeps_every_line_and_drops_only_the_newline(tmp_path):
    from lrdrop_cli.metrics import read_lines

    p = tmp_path / "hyp.txt"
    p.write_text("a b \n\nc\n", encoding="utf-8")
    assert read_lines(p) == ["a b ", "", "c"]  # an empty hypothesis stays a line; spaces are the scorer's
