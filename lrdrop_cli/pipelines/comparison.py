"""Baseline vs R-Drop vs LR-Drop (and its ablations and variants): seeds x dropouts, one command.

    lrdrop-compare [--out runs/compare] [--configs baseline,rdrop,lrdrop,lrdrop_layer,hidden,attn]
                              [--variant NAME="lr_drop flags" ...] [--seeds 1,2,3] [--dropouts 0.1,0.3]
                              [--max-update 2800 | --patience 4 --max-update 20000]
                              [--parallel 2]

Every configuration trains the demo's model (lrdrop-demo) on the same data
with the same batch, schedule and seeds; only the loss (and the dropout, per
--dropouts) differs. The modes (lrdrop_cli/modes.py): baseline, rdrop, lrdrop (the
paper's three terms, the hidden one at the FFN output), lrdrop_layer (the same at each layer's
output), and the ablations hidden (KL + hidden states) and attn (KL + attention); KL at
--kl-weight, the layer terms at --hidden-weight / --attn-weight.
``--variant NAME="FLAGS"`` adds a configuration: R-Drop plus the lr_drop FLAGS, e.g.
``--variant ffn_cos0.3="--hidden-weight 0.3 --hidden-site ffn --hidden-loss cosine"``;
``--mode MODE`` in FLAGS extends another mode and ``--max-update N`` gives the variant its own
budget, e.g. the baseline given R-Drop's wall-clock time:
``--variant base_long="--mode baseline --max-update 21000"``.

Two budgets:
- fixed (default): --max-update updates, the learning rate decaying linearly to 0;
- to convergence (--patience P): validation every epoch; two epochs in a row that lower
  the best validation perplexity by less than 0.1% halve the learning rate (fairseq's
  reduce_lr_on_plateau), and training stops after the 4th halving (--stop-min-lr) or
  after P epochs without a new best (fairseq's --patience on nll_loss); --max-update
  is a cap.

Each run translates test with its best checkpoint (lowest validation perplexity)
and scores sacreBLEU. A rerun skips finished runs and resumes an interrupted one
from its last checkpoint (its train.log is appended), so an interrupted
comparison goes on where it stopped. Writes OUT/results.json, OUT/results.md (per
dropout and configuration: best valid nll, test BLEU mean ± sd and per seed,
updates to the best checkpoint, minutes) and OUT/curves-dDROPOUT.png (first seed).

Data: --data-bin (default: the demo's, made by ``make demo`` or built here
with its steps 1-3). At full scale on a GPU, e.g. IWSLT14 prepared by
examples/iwslt/prepare-iwslt14.sh:

    lrdrop-compare --data-bin data/iwslt14/data-bin --raw data/iwslt14/tok --device cuda --parallel 1 \\
        --patience 10 --max-update 300000 --kl-weight 5 --dropouts 0.3 --lr 5e-4 \\
        --warmup 4000 --max-tokens 4096 \\
        --train-args "--encoder-layers 6 --decoder-layers 6 --encoder-embed-dim 512 --decoder-embed-dim 512"

(``--train-args`` go last to fairseq-train, so they override the demo's GPU model,
3+3 layers of 256 in fp16, here with transformer_iwslt_de_en's 6+6 of 512.)
"""

import json
import os
import shlex
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, NamedTuple, Optional

from lrdrop_cli import curves, modes, runs, steps
from lrdrop_cli.fairseq_io import StepFailed, read_log, run, training_seconds


def criterion_flags(mode, a):
    return modes.criterion_flags(mode, a.kl_weight, a.hidden_weight, a.attn_weight)


class Planned(NamedTuple):
    """One run of the plan."""

    name: str  # CONFIG-dDROPOUT-sSEED: its folder under --out
    config: str
    dropout: float
    seed: int
    flags: List[str]  # the criterion's
    updates: Optional[int] = None  # its own budget (a variant's --max-update); None: --max-update


def parse_variants(specs):
    """``NAME=FLAGS`` strings -> {name: (mode, [lr_drop flags], updates or None)}; raises SystemExit
    naming the bad one. Two flags in FLAGS are compare's own: ``--mode MODE``, the configuration it
    extends (default rdrop), and ``--max-update N``, its own budget, e.g. a baseline given R-Drop's
    wall-clock time: ``base_long="--mode baseline --max-update 21000"``."""
    variants = {}
    for spec in specs:
        name, sep, flags = spec.partition("=")
        name = name.strip()
        usage = (
            f"compare: --variant {spec!r}: use NAME=\"FLAGS\" with a new NAME without '-' "
            f'(not one of {", ".join(modes.MODES)}), e.g. ffn_cos="--hidden-weight 0.3 --hidden-site ffn" '
            '(R-Drop plus these lr_drop flags) or base_long="--mode baseline --max-update 21000"'
        )
        if not sep or not name or not flags.strip() or "-" in name or name in modes.MODES:
            sys.exit(usage)
        extra, mode, updates = shlex.split(flags), "rdrop", None
        for own in ("--mode", "--max-update"):
            while own in extra:
                i = extra.index(own)
                if i + 1 >= len(extra):
                    sys.exit(f"{usage}\n({own} needs a value)")
                value = extra[i + 1]
                del extra[i : i + 2]
                if own == "--mode":
                    if value not in modes.MODES:
                        sys.exit(f"{usage}\n(--mode {value!r}: choose from {', '.join(modes.MODES)})")
                    mode = value
                else:
                    if not value.isdigit() or int(value) < 1:
                        sys.exit(f"{usage}\n(--max-update {value!r}: a positive number of updates)")
                    updates = int(value)
        if mode == "baseline" and extra:
            sys.exit(f"{usage}\n(a baseline variant takes no lr_drop flags: {' '.join(extra)})")
        variants[name] = (mode, extra, updates)
    return variants


def plan(a):
    """[:class:`Planned`] in the order they run."""
    seeds = [int(s) for s in a.seeds.split(",")]
    dropouts = [float(d) for d in a.dropouts.split(",")]
    configs = {c: (criterion_flags(c, a), None) for c in a.configs.split(",") if c}
    for name, (mode, extra, updates) in a.variants.items():
        configs[name] = (criterion_flags(mode, a) + extra, updates)  # appended last: they override the mode's
    runs = [
        Planned(f"{c}-d{d:g}-s{s}", c, d, s, f, u) for d in dropouts for s in seeds for c, (f, u) in configs.items()
    ]
    # seed by seed, so that an interrupted comparison has whole seeds; lr_drop (slower) first in each
    baseline = "label_smoothed_cross_entropy"
    return sorted(runs, key=lambda r: (dropouts.index(r.dropout), seeds.index(r.seed), baseline in r.flags))


def run_one(a, name, dropout, seed, crit, threads, updates=None):
    """Train (or resume), translate test, score; returns the run's result (cached in OUT/NAME/result.json)."""
    d = os.path.join(a.out, name)
    result_file = os.path.join(d, "result.json")
    if os.path.isfile(result_file):
        return json.load(open(result_file))
    os.makedirs(d, exist_ok=True)
    env = {"OMP_NUM_THREADS": str(threads)}
    ckpt_dir, log = os.path.join(d, "checkpoints"), os.path.join(d, "train.log")
    if not steps.finished_training(ckpt_dir, log):
        schedule = runs.Schedule(
            lr=a.lr, warmup=a.warmup, max_tokens=a.max_tokens, updates=updates or a.max_update, patience=a.patience,
            keep_checkpoints=a.keep_checkpoints, save_every=a.save_every,
        )  # fmt: skip
        train_run = runs.TrainRun(
            a.data_bin, ckpt_dir, crit, schedule, seed=seed, dropout=dropout, device=a.device,
            model=steps.translation_model(a), train_args=a.train_args,
        )  # fmt: skip
        # a resumed run continues its log, whose timestamps give its minutes (kills included)
        run(runs.train_command(train_run), log=log, name=f"{name}: train", append=True, quiet=True, env=env)
    train_minutes = training_seconds(log) / 60
    gen_log = os.path.join(d, "generate.log")
    best = os.path.join(ckpt_dir, "checkpoint_best.pt")
    run(runs.generate_command(a.data_bin, best, a.device), log=gen_log, name=f"{name}: generate", quiet=True, env=env)
    langs = (a.source_lang, a.target_lang)
    hyps, refs, _ = steps.collect_hypotheses(gen_log, a.raw, langs, os.path.join(d, f"test.hyp.{langs[1]}"), name)
    from lrdrop_cli.metrics import bleu, chrf

    score, signature = bleu(hyps, refs)
    chrf_score, chrf_signature = chrf(hyps, refs)
    result = {
        "name": name,
        "corpus": a.corpus_name,
        "seed": seed,
        "dropout": dropout,
        "bleu": round(score.score, 2),
        "signature": signature,
        "chrf": round(chrf_score.score, 2),
        "chrf_signature": chrf_signature,
        **training_summary(log),
        "train_minutes": round(train_minutes, 2),
        "threads": threads,
        "budget": updates or a.max_update,
        "flags": " ".join(crit),
    }
    json.dump(result, open(result_file, "w"), indent=1)
    return result


def training_summary(log):
    """Best validation nll (bits) and where it was reached, from a (possibly resumed) fairseq log.

    ``train_nll_at_best``: mean training nll of the train_inner records between the
    validation before the best one and the best, so ``gap`` is the train/valid gap there.
    """
    records = read_log(log)
    valid = {int(r["valid_num_updates"]): r for r in records["valid"]}  # a resumed run repeats some
    if not valid:
        raise RuntimeError(f"no validation record in {log}")
    best_update = min(valid, key=lambda u: float(valid[u]["valid_nll_loss"]))
    earlier = [u for u in valid if u < best_update]
    start = max(earlier) if earlier else 0
    train = [float(r["nll_loss"]) for r in records["train_inner"] if start < int(r["num_updates"]) <= best_update]
    best_nll = float(valid[best_update]["valid_nll_loss"])
    summary = {
        "best_valid_nll": best_nll,
        "best_valid_loss": float(valid[best_update]["valid_loss"]),
        "best_update": best_update,
        "updates": max(valid),
        "final_valid_nll": float(valid[max(valid)]["valid_nll_loss"]),
    }
    if train:
        summary["train_nll_at_best"] = round(statistics.mean(train), 3)
        summary["gap"] = round(best_nll - summary["train_nll_at_best"], 3)
    return summary


def _mean_sd(xs, fmt):
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):{fmt}} ± {sd:{fmt}}"


def values_by_seed(results, cfg, dropout, key):
    """``{seed: result[key]}`` of ``cfg``'s finished runs at ``dropout`` (runs without ``key`` left out)."""
    return {r["seed"]: r[key] for r in results if r["config"] == cfg and r["dropout"] == dropout and key in r}


def paired(results, cfg, dropout, key, reference="rdrop"):
    """``key`` of ``cfg`` minus that of ``reference``, paired by seed (seeds both have)."""
    mine, ref = (values_by_seed(results, c, dropout, key) for c in (cfg, reference))
    return [mine[s] - ref[s] for s in sorted(mine) if s in ref]


def reading(diffs, values, reference_values, higher_is_better):
    """The paired difference from R-Drop in words: ``level`` when its mean is inside the seed spread
    (the larger of the two configurations' standard deviations over seeds), else ``better`` or
    ``worse``; ``one seed`` when fewer than two seeds pair up (no spread to compare with)."""
    if len(diffs) < 2:
        return "one seed"
    spread = max(statistics.stdev(values), statistics.stdev(reference_values))
    mean = statistics.mean(diffs)
    if abs(mean) <= spread:
        return "level"
    return "better" if (mean > 0) == higher_is_better else "worse"


READING = (
    "vs R-Drop: the mean ± sd over seeds of each seed's difference from R-Drop's run at the same dropout; "
    "level: the mean is inside the seed spread (the larger of the two configurations' sds), so no difference; "
    "better/worse: outside it (lower nll, higher BLEU is better)."
)


def table(results, order):
    lines = [
        "| dropout | configuration | seeds | best valid nll (bits, mean ± sd) | nll vs R-Drop (paired) "
        "| test BLEU (mean ± sd) | BLEU per seed | BLEU vs R-Drop (paired) | test chrF (mean ± sd) "
        "| updates to best | valid - train nll at best | train min/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dropout in sorted({r["dropout"] for r in results}):
        for cfg in order:
            rs = [r for r in results if r["config"] == cfg and r["dropout"] == dropout]
            if not rs:
                continue
            mean = lambda k: statistics.mean(r[k] for r in rs if k in r) if any(k in r for r in rs) else float("nan")  # noqa: E731
            vs = {}
            for key, fmt, higher_is_better in (("best_valid_nll", ".3f", False), ("bleu", ".2f", True)):
                diffs = paired(results, cfg, dropout, key)
                if not diffs or cfg == "rdrop":
                    vs[key] = ""
                    continue
                words = reading(
                    diffs,
                    list(values_by_seed(results, cfg, dropout, key).values()),
                    list(values_by_seed(results, "rdrop", dropout, key).values()),
                    higher_is_better,
                )
                vs[key] = f"{_mean_sd(diffs, fmt)} ({words})"
            chrfs = [r["chrf"] for r in rs if "chrf" in r]
            lines.append(
                f"| {dropout:g} | {cfg} | {len(rs)} | {_mean_sd([r['best_valid_nll'] for r in rs], '.3f')} "
                f"| {vs['best_valid_nll']} | {_mean_sd([r['bleu'] for r in rs], '.2f')} "
                f"| {', '.join('%.2f' % r['bleu'] for r in rs)} | {vs['bleu']} "
                f"| {_mean_sd(chrfs, '.2f') if chrfs else ''} "
                f"| {mean('best_update'):.0f} | {mean('gap'):.2f} | {mean('train_minutes'):.1f} |"
            )
    return "\n".join(lines)


def resolve_data(a):
    """``a.data_bin`` and ``a.raw`` as absolute paths (the demo's data, built with its steps 1-3,
    if no --data-bin); exits naming the flag when the references are missing."""
    if a.data_bin is None:
        demo_out = os.path.abspath(os.path.join("runs", "demo"))
        a.data_bin = os.path.join(demo_out, "data-bin")
        if not os.path.isfile(os.path.join(a.data_bin, f"test.{a.source_lang}-{a.target_lang}.{a.target_lang}.bin")):
            print("[compare] building the demo's data (lrdrop-demo steps 1-3)", flush=True)
            try:
                run([sys.executable, "-m", "lrdrop_cli.bin.demo", "--out", demo_out, "--data-only"], name="demo data")
            except StepFailed as e:
                sys.exit(f"compare: building the demo data failed: {e}")
    a.data_bin = os.path.abspath(a.data_bin)
    a.raw = os.path.abspath(a.raw or os.path.join(os.path.dirname(a.data_bin), "corpus"))
    if not os.path.isfile(os.path.join(a.raw, f"test.{a.target_lang}")):
        sys.exit(
            f"compare: no references {a.raw}/test.{a.target_lang}; give --raw DIR with "
            f"test.{a.source_lang} and test.{a.target_lang}"
        )
    a.corpus_name = a.corpus_name or os.path.basename(os.path.dirname(a.raw))


def train_all(a, planned, threads, t0):
    """Every planned run (resumed or skipped where done), ``a.parallel`` at a time: their results."""

    def job(r):
        name, cfg, dropout, seed, crit, updates = r
        res = run_one(a, name, dropout, seed, crit, threads, updates)
        res["config"] = cfg
        print(
            f"[compare] {name}: BLEU {res['bleu']:.2f}, best valid nll {res['best_valid_nll']:.3f} at update "
            f"{res['best_update']}, {res['train_minutes']:.1f} min ({(time.time() - t0) / 60:.0f} min elapsed)",
            flush=True,
        )
        return res

    try:
        with ThreadPoolExecutor(a.parallel) as pool:
            return list(pool.map(job, planned))
    except StepFailed as e:
        sys.exit(f"[compare] FAILED: {e}\n(finished runs are kept; the same command resumes)")


def finished_results(a, planned):
    """The results of the planned runs that have finished (--report); nothing is trained."""
    results = []
    for name, cfg, *_ in planned:
        result_file = os.path.join(a.out, name, "result.json")
        if os.path.isfile(result_file):
            result = json.load(open(result_file))
            log = os.path.join(a.out, name, "train.log")
            seconds = training_seconds(log) if os.path.isfile(log) else 0.0
            if seconds:  # from the log: runs finished by older code counted only their last process
                result["train_minutes"] = round(seconds / 60, 2)
            results.append({**result, "config": cfg})
    print(f"[compare] --report: {len(results)} of {len(planned)} runs finished")
    if not results:
        sys.exit(1)
    return results


def write_report(a, planned, results, threads, t0):
    """OUT/results.md (also printed), OUT/results.json and OUT/curves-dDROPOUT.png (first seed)."""
    order = list(dict.fromkeys(r.config for r in sorted(planned, key=lambda r: r.name)))
    order = [c for c in modes.MODES if c in order] + [c for c in order if c not in modes.MODES]
    md = table(results, order) + "\n\n" + READING
    print("\n" + md)
    summary = {
        "corpus": a.corpus_name, "runs": results, "max_update": a.max_update, "patience": a.patience,
        "seeds": a.seeds, "dropouts": a.dropouts, "threads_per_run": threads, "parallel": a.parallel,
        "wall_minutes": round((time.time() - t0) / 60, 1),
    }  # fmt: skip
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md + "\n")
    first_seed = int(a.seeds.split(",")[0])
    for dropout in sorted({r.dropout for r in planned}):
        logs = [(r.config, os.path.join(a.out, r.name, "train.log")) for r in planned
                if r.seed == first_seed and r.dropout == dropout]  # fmt: skip
        figure = os.path.join(a.out, f"curves-d{dropout:g}.png")
        missing = [path for _, path in logs if not os.path.isfile(path)]
        if missing:  # results restored without their logs: a figure without those runs would mislead
            print(f"[compare] no {os.path.basename(figure)}: no training log at {', '.join(missing)}")
            if os.path.exists(figure):
                os.remove(figure)
            continue
        curves.plot(logs, figure)
    print(f"[compare] wrote {a.out}/results.md, results.json and the curves of runs with logs")


def budget_text(a):
    """The header's budget: --max-update (or the patience rule), and each variant's own budget."""
    if a.patience:
        text = f"until valid nll stops improving for {a.patience} validations (cap {a.max_update})"
    else:
        text = f"{a.max_update} updates each"
    own = [f"{name}: {updates}" for name, (_, _, updates) in a.variants.items() if updates]
    return f"{text} ({', '.join(own)} updates)" if own else text


def run_comparison(a):
    """The comparison for the parsed command line ``a``: train what is missing (or, with
    --report, only tabulate what finished), then the table, the JSON and the curves."""
    a.out = os.path.abspath(a.out)
    a.dropouts = a.dropouts or str(a.dropout)
    a.variants = parse_variants(a.variant)
    modes.choose(a.configs, "--configs", "compare")
    resolve_data(a)
    planned = plan(a)
    threads = max(1, (os.cpu_count() or 1) // a.parallel) if a.device == "cpu" else 1
    print(f"[compare] {len(planned)} runs, {budget_text(a)}, {a.parallel} at a time x {threads} threads", flush=True)
    t0 = time.time()
    if a.report:
        results = finished_results(a, planned)
        planned = [r for r in planned if any(res["name"] == r.name for res in results)]
    else:
        results = train_all(a, planned, threads, t0)
    write_report(a, planned, results, threads, t0)
