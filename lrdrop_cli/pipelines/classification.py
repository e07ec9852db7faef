"""The offline sentence-classification demo: a small RoBERTa-shaped model trained from scratch
on CPU, fairseq's sentence_prediction baseline against LR-Drop (``make demo-classification``).

Steps (each skips work already done under OUT, and names itself on failure):
  1. corpus     Debian package descriptions -> archive section, 12 classes
                (lrdrop-build-debian-sections), or your own --input/--labels files
  2. spm        a sentencepiece BPE model on the training texts
  3. binarize   fairseq's GLUE layout (input0/, label/)
  4. train      roberta_lrdrop (2 layers, 128-dim) for each of --modes x --seeds:
                baseline = --criterion sentence_prediction, lrdrop = lr_drop_sentence_prediction
                (class KL + encoder self-attention, the product's defaults); best by valid accuracy
  5. evaluate   test accuracy and macro-F1 per run (predictions in OUT/RUN/test.pred), a table,
                and a few predictions

    lrdrop-demo-classification [--out runs/demo-classification] [--modes baseline,lrdrop] [--seeds 1]

Sizes were chosen for 2 CPU cores (README: "Sentence classification").
"""

import json
import os
import statistics
import sys
import time

from lrdrop_cli import modes, presets, runs
from lrdrop_cli.fairseq_io import StepFailed, run
from lrdrop_cli.sentence_data import binarize, load_classifier, predict
from lrdrop_cli.steps import (
    finished_training,
    fixed_schedule,
    folders,
    read_text_lines,
    sentencepiece,
    user_corpus,
)
from lrdrop_cli.steps import step as demo_step

COLUMNS = ("input0", "label")


def step(n, name, what):
    demo_step(n, name, what, total=5, demo="demo-classification")


def corpus(args, raw):
    if os.path.isfile(os.path.join(raw, "test.label")):
        print(f"(done already: {raw})")
        return
    if args.input or args.labels:
        user_corpus(raw, (args.input, args.labels), ("--input", "--labels"), COLUMNS, "text / label",
                    args.valid_size, args.test_size, args.data_seed)  # fmt: skip
    else:
        from lrdrop_cli.corpora import debian_sections as deb

        try:
            deb.build(raw, n_valid=args.valid_size, n_test=args.test_size, seed=args.data_seed)
        except (RuntimeError, ValueError) as e:
            raise StepFailed(f"corpus: {e}")
    print(open(os.path.join(raw, "SOURCE.txt"), encoding="utf-8").read())


def num_classes(data_bin):
    with open(os.path.join(data_bin, "label", "dict.txt"), encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def train(args, mode, seed, data_bin, run_dir):
    """(the run's best checkpoint, whether it trained now: False if an earlier invocation finished it)."""
    ckpt_dir, log = os.path.join(run_dir, "checkpoints"), os.path.join(run_dir, "train.log")
    best = finished_training(ckpt_dir, log)
    if best:
        return best, False
    task = ["--task", "sentence_prediction", "--num-classes", str(num_classes(data_bin)), "--init-token", "0",
            "--separator-token", "2", "--max-positions", str(args.max_positions), "--shorten-method", "truncate",
            "--required-batch-size-multiple", "1", "--clip-norm", "1.0"]  # fmt: skip
    criterion = modes.criterion_flags(
        mode, args.kl_weight, args.hidden_weight, args.attn_weight, task="sentence_prediction"
    )
    cmd = runs.train_command(
        runs.TrainRun(data_bin, ckpt_dir, criterion, fixed_schedule(args), seed=seed, dropout=args.dropout,
                      device=args.device, arch="roberta_lrdrop", model=presets.CLASSIFICATION, task=task,
                      weight_decay=0.01, best_metric="accuracy", share_embeddings=False, train_args=args.train_args)
    )  # fmt: skip
    os.makedirs(run_dir, exist_ok=True)
    run(cmd, log=log, name=f"train {os.path.basename(run_dir)}", append=True)
    return os.path.join(ckpt_dir, "checkpoint_best.pt"), True


def evaluate(best, data_bin, spm_dir, raw):
    """(test accuracy %, macro-F1 %, predictions) of a checkpoint."""
    from sklearn.metrics import f1_score

    model, task = load_classifier(best, data_bin)
    texts = read_text_lines(os.path.join(spm_dir, "test.input0"), "test.input0")
    gold = read_text_lines(os.path.join(raw, "test.label"), "test.label")
    pred = predict(model, task, texts)
    accuracy = 100.0 * sum(p == g for p, g in zip(pred, gold)) / len(gold)
    return accuracy, 100.0 * f1_score(gold, pred, average="macro"), pred


def summary(values):
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def run_demo(args):
    """Every step of the pipeline for the parsed command line ``args``; exits with the failed step."""
    run_modes = modes.choose(args.modes, "--modes", "demo-classification")
    seeds = [int(s) for s in args.seeds.split(",")]

    out, raw, spm_dir, data_bin, _, _ = folders(args.out)  # one run folder (checkpoints, log) per mode and seed
    t0 = time.time()
    result_file = os.path.join(out, "result.json")
    # runs of earlier invocations (other seeds) stay in the table
    results = json.load(open(result_file))["runs"] if os.path.isfile(result_file) else {}
    try:
        step(1, "corpus", raw)
        corpus(args, raw)
        step(2, "spm", spm_dir)
        sentencepiece(args.vocab, raw, spm_dir, ("input0",))
        step(3, "binarize", data_bin)
        if not os.path.isfile(os.path.join(data_bin, "label", "test.bin")):
            binarize(spm_dir, data_bin, labels_dir=raw, log=os.path.join(out, "preprocess.log"))
        for seed in seeds:
            for mode in run_modes:
                name = f"{mode}-s{seed}"
                step(4, "train", f"{name}: roberta_lrdrop (small), {args.updates} updates on {args.device}")
                started = time.time()
                best, trained_now = train(args, mode, seed, data_bin, os.path.join(out, name))
                minutes = (time.time() - started) / 60 if trained_now else results.get(name, {}).get("minutes")
                accuracy, f1, pred = evaluate(best, data_bin, spm_dir, raw)
                with open(os.path.join(out, name, "test.pred"), "w", encoding="utf-8") as f:
                    f.writelines(label + "\n" for label in pred)  # test order, as raw/test.label
                results[name] = {"mode": mode, "seed": seed, "accuracy": accuracy, "macro_f1": f1, "minutes": minutes}
                print(f"[demo-classification] {name}: test accuracy {accuracy:.1f}%, macro-F1 {f1:.1f}")
        step(5, "evaluate", "test accuracy and macro-F1")
        texts = read_text_lines(os.path.join(raw, "test.input0"), "test.input0")
        gold = read_text_lines(os.path.join(raw, "test.label"), "test.label")
        majority = max(gold.count(label) for label in set(gold)) / len(gold) * 100
        print("\nExample predictions (test set, last run):")
        for i in range(0, len(gold), max(1, len(gold) // 6))[:6]:
            text = texts[i] if len(texts[i]) < 160 else texts[i][:160] + " ..."
            print(f"  TEXT {text}\n  GOLD {gold[i]:<12} PRED {pred[i]}\n")
        print(f"test: {len(gold)} examples, {len(set(gold))} classes; always the commonest class: {majority:.1f}%")
        print(f"{'mode':<10} {'seeds':>5} {'accuracy %':>14} {'macro-F1 %':>14}")
        for mode in run_modes:
            rows = [r for r in results.values() if r["mode"] == mode]  # every seed run under OUT
            acc, f1 = summary([r["accuracy"] for r in rows]), summary([r["macro_f1"] for r in rows])
            print(f"{mode:<10} {len(rows):>5} {acc:>14} {f1:>14}")
    except StepFailed as e:
        sys.exit(f"\n[demo-classification] FAILED: {e}")
    with open(result_file, "w") as f:
        json.dump({"runs": results, "majority_class_accuracy": majority, "updates": args.updates}, f, indent=1)
    print(f"\n[demo-classification] done in {(time.time() - t0) / 60:.1f} min; everything is under {out}")
