#!/usr/bin/env python
"""Baseline vs R-Drop vs LR-Drop (and its ablations) under one budget, several seeds.

    python scripts/compare.py [--out runs/compare] [--max-update 2800] [--seeds 1,2]
                              [--configs baseline,rdrop,lrdrop,hidden,attn]
                              [--sweep-hidden 0.5,2 --sweep-attn 0.5,2] [--parallel 2]

Every configuration trains the demo's model (scripts/demo.py) on the same data
with the same batch, schedule, number of updates and seeds; only the loss
differs:

  baseline  label-smoothed cross-entropy (one copy per batch)
  rdrop     lr_drop, output KL only (R-Drop)
  lrdrop    lr_drop, output KL + hidden states + attention (LR-Drop)
  hidden    lr_drop, output KL + hidden states
  attn      lr_drop, output KL + attention

``--sweep-hidden``/``--sweep-attn`` add LR-Drop runs with other hidden/attention
weights (the other one kept at its default; first seed only). Each run then
translates test with its best checkpoint (lowest valid loss) and scores
sacreBLEU. Runs that finished are skipped on a rerun, so an interrupted
comparison resumes. Writes OUT/results.json, OUT/results.md (mean and spread
over seeds; final train vs best valid loss shows over-fitting) and
OUT/curves.png (first seed of each configuration).

Data: --data-bin (default: the demo's, made by ``make demo`` or built here
with its steps 1-3). At full scale on a GPU, e.g. IWSLT14 prepared by
examples/iwslt/prepare-iwslt14.sh:

    python scripts/compare.py --data-bin data/iwslt14/data-bin --raw data/iwslt14/tok --device cuda --parallel 1 \\
        --max-update 300000 --kl-weight 5 --dropout 0.3 --lr 5e-4 --warmup 4000 --max-tokens 4096 \\
        --train-args "--encoder-layers 6 --decoder-layers 6 --encoder-embed-dim 512 --decoder-embed-dim 512"

(``--train-args`` go last to fairseq-train, so they override the demo's GPU model,
3+3 layers of 256 in fp16, here with transformer_iwslt_de_en's 6+6 of 512.)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo  # noqa: E402
from plot_curves import read_log  # noqa: E402

CONFIGS = ("baseline", "rdrop", "lrdrop", "hidden", "attn")


def criterion_flags(name, a, hidden=None, attn=None):
    hidden = a.hidden_weight if hidden is None else hidden
    attn = a.attn_weight if attn is None else attn
    if name == "baseline":
        return ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"]
    weights = {"rdrop": (0, 0), "lrdrop": (hidden, attn), "hidden": (hidden, 0), "attn": (0, attn)}[name]
    return demo.lr_drop_flags(a.kl_weight, *weights)


def plan(a):
    """[(run name, config, seed, criterion flags)], the slowest (lr_drop) runs first."""
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = [(f"{c}-s{s}", c, s, criterion_flags(c, a)) for c in a.configs.split(",") for s in seeds]
    for w in [float(x) for x in a.sweep_hidden.split(",") if x]:
        runs.append((f"lrdrop_hidden{w:g}-s{seeds[0]}", f"lrdrop_hidden{w:g}", seeds[0],
                     criterion_flags("lrdrop", a, hidden=w)))
    for w in [float(x) for x in a.sweep_attn.split(",") if x]:
        runs.append((f"lrdrop_attn{w:g}-s{seeds[0]}", f"lrdrop_attn{w:g}", seeds[0],
                     criterion_flags("lrdrop", a, attn=w)))
    return sorted(runs, key=lambda r: r[1] == "baseline")


def run_one(a, name, seed, crit, threads):
    """Train, translate test, score; returns the run's result (cached in OUT/NAME/result.json)."""
    d = os.path.join(a.out, name)
    result_file = os.path.join(d, "result.json")
    if os.path.isfile(result_file):
        return json.load(open(result_file))
    os.makedirs(d, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    targs = argparse.Namespace(**{**vars(a), "seed": seed, "minutes": None, "updates": a.max_update})
    log = os.path.join(d, "train.log")
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.run(demo.train_command(targs, a.data_bin, os.path.join(d, "checkpoints"), crit),
                           stdout=f, stderr=subprocess.STDOUT, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{name}: fairseq-train failed (exit {p.returncode}); see {log}")
    train_minutes = (time.time() - t0) / 60
    gen_log = os.path.join(d, "generate.log")
    with open(gen_log, "w") as f:
        p = subprocess.run(demo.generate_command(targs, a.data_bin, os.path.join(d, "checkpoints", "checkpoint_best.pt")),
                           stdout=f, stderr=subprocess.STDOUT, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{name}: fairseq-generate failed (exit {p.returncode}); see {gen_log}")
    hyps, refs, _ = demo.collect_hypotheses(gen_log, a.raw, ("de", "en"), os.path.join(d, "test.hyp.en"), name)
    from score_bleu import bleu

    score, signature = bleu(hyps, refs)
    valid = [float(r["valid_loss"]) for r in read_log(log)["valid"]]
    last_train = last_epoch_summary(log)
    result = {"name": name, "seed": seed, "bleu": round(score.score, 2), "signature": signature,
              "best_valid_loss": min(valid), "final_valid_loss": valid[-1], "final_train_loss": float(last_train["train_loss"]),
              "updates": int(last_train["train_num_updates"]), "train_minutes": round(train_minutes, 2),
              "threads": threads, "flags": " ".join(crit)}
    json.dump(result, open(result_file, "w"), indent=1)
    return result


def last_epoch_summary(log):
    """fairseq's last end-of-epoch train record (mean loss over that epoch: per copy for lr_drop)."""
    last = None
    for line in open(log, encoding="utf-8"):
        start = line.find("{")
        if start >= 0 and '"train_loss"' in line:
            last = json.loads(line[start:])
    if last is None:
        raise RuntimeError(f"no end-of-epoch train record in {log}")
    return last


def table(results, order):
    lines = ["| configuration | seeds | test BLEU (mean ± sd) | per seed | best valid loss | last-epoch train loss | train min/run |",
             "|---|---|---|---|---|---|---|"]
    for cfg in order:
        rs = [r for r in results if r["config"] == cfg]
        if not rs:
            continue
        b = [r["bleu"] for r in rs]
        sd = statistics.stdev(b) if len(b) > 1 else 0.0
        mean = lambda k: statistics.mean(r[k] for r in rs)  # noqa: E731
        lines.append(f"| {cfg} | {len(rs)} | {statistics.mean(b):.2f} ± {sd:.2f} | {', '.join(f'{x:.2f}' for x in b)} "
                     f"| {mean('best_valid_loss'):.3f} | {mean('final_train_loss'):.3f} | {mean('train_minutes'):.1f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(demo.ROOT, "runs", "compare"))
    ap.add_argument("--data-bin", help="binarized data (default: the demo's, built if missing)")
    ap.add_argument("--raw", help="folder with test.de / test.en references (default: next to --data-bin)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--max-update", type=int, default=2800, help="updates per run (the same for every run; "
                    "the learning rate decays linearly to 0 over them, as in the demo)")
    ap.add_argument("--sweep-hidden", default="", help="extra LR-Drop runs with these --hidden-weight values")
    ap.add_argument("--sweep-attn", default="", help="extra LR-Drop runs with these --attn-weight values")
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time; each gets cores/parallel "
                    "threads (on 2 cores, 2 one-thread runs beat one two-thread run by ~1.2x)")
    demo.add_training_args(ap)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--model", choices=("cpu", "cuda"), help="train the CPU or the GPU demo's model and defaults "
                    "(default: --device's); --device cuda --model cpu runs the CPU demo's model on a GPU")
    ap.add_argument("--train-args", default="", help="extra fairseq-train arguments, appended last")
    a = demo.parse_args(ap)
    a.out = os.path.abspath(a.out)
    unknown = [c for c in a.configs.split(",") if c not in CONFIGS]
    if unknown:
        sys.exit(f"compare: unknown --configs {','.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if a.data_bin is None:
        demo_out = os.path.join(demo.ROOT, "runs", "demo")
        a.data_bin = os.path.join(demo_out, "data-bin")
        if not os.path.isfile(os.path.join(a.data_bin, "test.de-en.en.bin")):
            print("[compare] building the demo's data (scripts/demo.py steps 1-3)", flush=True)
            p = subprocess.run([sys.executable, os.path.join(demo.ROOT, "scripts", "demo.py"), "--out", demo_out,
                                "--data-only"])
            if p.returncode != 0:
                sys.exit("compare: building the demo data failed (see above)")
    a.data_bin = os.path.abspath(a.data_bin)
    a.raw = os.path.abspath(a.raw or os.path.join(os.path.dirname(a.data_bin), "corpus"))
    if not os.path.isfile(os.path.join(a.raw, "test.en")):
        sys.exit(f"compare: no references {a.raw}/test.en; give --raw DIR with test.de and test.en")

    runs = plan(a)
    threads = max(1, (os.cpu_count() or 1) // a.parallel) if a.device == "cpu" else 1
    print(f"[compare] {len(runs)} runs, {a.max_update} updates each, {a.parallel} at a time x {threads} threads",
          flush=True)
    t0 = time.time()

    def job(r):
        name, cfg, seed, crit = r
        res = run_one(a, name, seed, crit, threads)
        res["config"] = cfg
        print(f"[compare] {name}: BLEU {res['bleu']:.2f}, best valid loss {res['best_valid_loss']:.3f}, "
              f"{res['train_minutes']:.1f} min ({(time.time() - t0) / 60:.0f} min elapsed)", flush=True)
        return res

    with ThreadPoolExecutor(a.parallel) as pool:
        results = list(pool.map(job, runs))
    order = list(dict.fromkeys(r[1] for r in sorted(runs, key=lambda r: r[0])))
    order = [c for c in CONFIGS if c in order] + [c for c in order if c not in CONFIGS]
    md = table(results, order)
    print("\n" + md)
    json.dump({"runs": results, "max_update": a.max_update, "seeds": a.seeds, "threads_per_run": threads,
               "parallel": a.parallel, "wall_minutes": round((time.time() - t0) / 60, 1)},
              open(os.path.join(a.out, "results.json"), "w"), indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md + "\n")
    first_seed = a.seeds.split(",")[0]
    logs = [f"{cfg}={os.path.join(a.out, name, 'train.log')}" for name, cfg, seed, _ in runs if str(seed) == first_seed]
    subprocess.run([sys.executable, os.path.join(demo.ROOT, "scripts", "plot_curves.py"), *logs,
                    "--out", os.path.join(a.out, "curves.png")], check=True)
    print(f"[compare] wrote {a.out}/results.md, results.json, curves.png")


if __name__ == "__main__":
    main()
