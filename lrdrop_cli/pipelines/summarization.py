"""The built-in summarisation demo (``make demo-summarization``): a small
``bart_lrdrop``-shaped model trained from scratch with ``lr_drop``, on CPU, offline
apart from Debian's package index.

Steps (each skips work already done under OUT, and names itself on failure):
  1. corpus      Debian package descriptions -> synopses
                 (lrdrop-build-debian-summaries), or your own --source/--target files
  2. spm         a joint sentencepiece BPE model, applied to every split
  3. binarize    fairseq-preprocess --joined-dictionary (BART shares its embeddings)
  4. train       fairseq-train --arch bart_lrdrop_base (shrunk) --criterion lr_drop
                 --truncate-source, --updates updates (learning rate decaying linearly
                 to 0 over them), capped at --minutes
  5. summarize   beam search on test, ROUGE-1/2/L/Lsum (lrdrop-score-rouge)
  6. plot        training curves (lrdrop-plot)

    lrdrop-demo-summarization [--out runs/demo-summarization] [--updates 1000]

This proves the pipeline of examples/cnndm (truncation, BART's architecture,
lr_drop, decoding constraints, ROUGE) at toy scale: a model trained from
scratch for minutes on CPU is not expected to summarise well.
"""

import json
import os
import sys
import time

from lrdrop_cli import modes, presets, runs
from lrdrop_cli.fairseq_io import StepFailed, run
from lrdrop_cli.steps import (
    collect_hypotheses,
    finished_training,
    fixed_schedule,
    folders,
    plot,
    prepare,
    user_corpus,
)
from lrdrop_cli.steps import step as demo_step

LANGS = ("source", "target")


def step(n, name, what):
    demo_step(n, name, what, demo="demo-summarization")


def corpus(args, raw):
    if os.path.isfile(os.path.join(raw, "test.target")):
        print(f"(done already: {raw})")
        return
    from lrdrop_cli.corpora import debian_summaries as deb

    if args.source or args.target:
        user_corpus(raw, (args.source, args.target), ("--source", "--target"), LANGS, "document / summary",
                    args.valid_size, args.test_size, args.seed)  # fmt: skip
    else:
        try:
            deb.build(raw, args.index, args.valid_size, args.test_size, args.seed)
        except (RuntimeError, ValueError) as e:
            raise StepFailed(f"corpus: {e}")
    print(open(os.path.join(raw, "SOURCE.txt"), encoding="utf-8").read())


def train(args, data_bin, ckpt_dir, log):
    best = finished_training(ckpt_dir, log)
    if best:
        return best
    task = ["--task", "translation", "--source-lang", LANGS[0], "--target-lang", LANGS[1], "--truncate-source",
            "--max-source-positions", str(args.max_source_tokens), "--max-target-positions", "64",
            "--skip-invalid-size-inputs-valid-test", "--clip-norm", "1.0"]  # fmt: skip
    criterion = modes.criterion_flags("lrdrop", args.kl_weight, args.hidden_weight, args.attn_weight)
    model = presets.SUMMARIZATION_GPU if args.device == "cuda" else presets.SUMMARIZATION_CPU
    cmd = runs.train_command(
        runs.TrainRun(data_bin, ckpt_dir, criterion, fixed_schedule(args), seed=args.seed, dropout=args.dropout,
                      device=args.device, arch="bart_lrdrop_base", model=model, task=task, weight_decay=0.01,
                      train_args=args.train_args)
    )  # fmt: skip
    run(cmd, log=log, name="train", append=True)
    return os.path.join(ckpt_dir, "checkpoint_best.pt")


def summarize(args, data_bin, best, raw, out):
    from lrdrop_cli.metrics import format_scores, rouge

    gen_log = os.path.join(out, "generate.log")
    task = ["--source-lang", LANGS[0], "--target-lang", LANGS[1], "--truncate-source",
            "--max-source-positions", str(args.max_source_tokens)]  # fmt: skip
    cmd = runs.generate_command(data_bin, best, args.device, presets.SUMMARIZATION_DECODING, task, max_tokens=8000)
    run(cmd, log=gen_log, name="summarize")
    hyps, refs, docs = collect_hypotheses(gen_log, raw, LANGS, os.path.join(out, "test.hyp.target"), "summarize")
    scores = rouge(hyps, refs)
    print("\nExample summaries (test set):")
    for i in range(0, len(refs), max(1, len(refs) // 5))[:5]:
        doc = docs[i] if len(docs[i]) < 300 else docs[i][:300] + " ..."
        print(f"  DOC {doc}\n  REF {refs[i]}\n  HYP {hyps[i]}\n")
    print(f"ROUGE on test ({len(refs)} summaries; F1 x 100, rouge-score with stemming): {format_scores(scores)}")
    print(
        "(A toy model trained from scratch for minutes on CPU: this proves the pipeline, it is not\n"
        " expected to summarise well. Fine-tune bart.large with examples/cnndm/ for real summaries.)"
    )
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(
            {
                **{k: round(v, 2) for k, v in scores.items()},
                "test_summaries": len(refs),
                "updates": args.updates,
                "device": args.device,
            },
            f,
            indent=1,
        )
    return scores


def run_demo(args):
    """Every step of the pipeline for the parsed command line ``args``; exits with the failed step."""
    where = folders(args.out)
    t0 = time.time()
    try:
        prepare("demo-summarization", where, lambda raw: corpus(args, raw), args.vocab, LANGS)
        budget = f"{args.updates} updates (at most {args.minutes:g} min) on {args.device}"
        step(4, "train", f"bart_lrdrop (small) with lr_drop, {budget}")
        best = train(args, where.data_bin, where.checkpoints, where.log)
        step(5, "summarize", "beam 4 on test, ROUGE")
        summarize(args, where.data_bin, best, where.raw, where.out)
        step(6, "plot", os.path.join(where.out, "curves.png"))
        plot(where.log, where.out)
    except StepFailed as e:
        sys.exit(f"\n[demo-summarization] FAILED: {e}")
    print(f"\n[demo-summarization] done in {(time.time() - t0) / 60:.1f} min; everything is under {where.out}")
