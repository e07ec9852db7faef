"""Cost of LR-Drop against R-Drop and the baseline: training step time, peak memory, beam search.

    lrdrop-benchmark [--arch transformer_lrdrop_iwslt_de_en] [--shapes 64x32,16x128]
                                [--steps 10] [--device cpu|cuda] [--fp16|--bf16] [--json out.json]

Training: for each shape (sentences x max tokens per copy; lengths drawn
between half and full length, so batches carry padding) and each mode, one
fresh process builds the model, runs ``--warmup`` + ``--steps`` updates
(forward, backward, Adam step) on the same synthetic batch and reports the
median time per update and its peak memory (max RSS on CPU,
``torch.cuda.max_memory_allocated`` on CUDA). Modes:

  plain     fairseq's own architecture of the same shapes (e.g. bart_large), label smoothing
  baseline  label-smoothed cross-entropy, one copy
  rdrop     lr_drop --kl-weight 5 --hidden-weight 0 --attn-weight 0
  hidden    lr_drop, output KL + hidden-state term (5 / 1 / 0)
  attn      lr_drop, output KL + attention term (5 / 0 / 1)
  lrdrop    lr_drop, all three terms (5 / 1 / 1)

(the modes of lrdrop_cli/modes.py, as in lrdrop-compare and the recipes; before the
toolkit's redesign, hidden and attn here meant that term alone, without the KL).

Inference: beam-5 generation of the same sentences with the ``_lrdrop``
architecture and with plain fairseq's, same weights.

Prints a markdown table and writes JSON (``--json``).
"""

import json
import os
import resource
import statistics
import sys
import tempfile
import time

from lrdrop_cli import modes
from lrdrop_cli.fairseq_io import run

# the shared modes (lrdrop_cli/modes.py), plus fairseq's own architecture of the same shapes
MODES = ("plain", *modes.MODES)
KL, HIDDEN, ATTN = 5.0, 1.0, 1.0  # R-Drop's IWSLT KL weight; the layer terms at 1


def build(arch, vocab, device, dtype, dropout, seed=1):
    import torch

    import lrdrop_fairseq  # noqa: F401  (first: registers the archs; keeps fairseq from reconfiguring logging)

    # isort: split
    from fairseq import options
    from fairseq.data import Dictionary
    from fairseq.models import ARCH_MODEL_REGISTRY

    d = Dictionary()
    for i in range(vocab - len(d)):
        d.add_symbol(f"w{i}")

    class Task:  # what build_model and the criteria read from a task
        source_dictionary = target_dictionary = d

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser, ["x", "--arch", arch, "--share-all-embeddings", "--dropout", str(dropout)]
    )
    torch.manual_seed(seed)
    model = ARCH_MODEL_REGISTRY[arch].build_model(args, Task).to(device=device, dtype=dtype)
    return model, d, Task


def parse_shape(shape: str):
    """``NxT`` (N sentences of T tokens on both sides) or ``NxS:T`` (source S, target T tokens,
    e.g. 1x1024:120 for summarization) -> (N, S, T)."""
    try:
        n, lengths = shape.split("x")
        src, _, tgt = lengths.partition(":")
        return int(n), int(src), int(tgt or src)
    except ValueError:
        raise ValueError(f"shape {shape!r}: use SENTENCESxTOKENS or SENTENCESxSOURCE:TARGET, e.g. 64x32 or 1x1024:120")


def make_batch(d, n_sent, src_len, device, seed=0, tgt_len=None):
    """A synthetic batch: ``n_sent`` sentences, lengths drawn between half and full length on each
    side (the first sentence full), so batches carry padding. ``tgt_len``: default ``src_len``."""
    import torch

    tgt_len = src_len if tgt_len is None else tgt_len
    g = torch.Generator().manual_seed(seed)

    def lengths(max_len):
        lens = torch.randint(max(2, max_len // 2), max_len + 1, (n_sent,), generator=g)
        lens[0] = max_len
        return lens

    def tokens(lens, max_len):
        x = torch.full((n_sent, max_len), d.pad())
        for i, n in enumerate(lens.tolist()):
            x[i, : n - 1] = torch.randint(d.nspecial, len(d), (n - 1,), generator=g)
            x[i, n - 1] = d.eos()
        return x

    src_lens = lengths(src_len)
    tgt_lens = src_lens if tgt_len == src_len else lengths(tgt_len)
    src, tgt = tokens(src_lens, src_len), tokens(tgt_lens, tgt_len)
    prev = torch.full_like(tgt, d.pad())
    for i, n in enumerate(tgt_lens.tolist()):  # fairseq's shift: eos + target without its last token
        prev[i, 0] = d.eos()
        prev[i, 1:n] = tgt[i, : n - 1]
    # fairseq pads sources on the left
    src = torch.stack([torch.roll(s, int(src_len - n)) for s, n in zip(src, src_lens.tolist())])
    return {
        "net_input": {
            "src_tokens": src.to(device),
            "src_lengths": src_lens.to(device),
            "prev_output_tokens": prev.to(device),
        },
        "target": tgt.to(device),
        "ntokens": int(tgt_lens.sum()),
        "nsentences": n_sent,
    }


def saved_for_backward_mb(forward, exclude=()) -> float:
    """MB that the autograd graph of ``forward()``'s result holds for the backward: every tensor
    its nodes saved (built-in nodes' ``_saved_*``, custom functions' ``saved_tensors``), each
    storage once, those of ``exclude`` (the parameters) left out. What a graph used up inside the
    forward held is gone by then. Unlike peak RSS it does not depend on the allocator, the
    thread count or what else runs, so it compares the modes' activation memory exactly."""
    import torch

    skip = {t.untyped_storage().data_ptr() for t in exclude}
    storages, seen = {}, set()

    def count(value):
        if isinstance(value, torch.Tensor):
            ptr = value.untyped_storage().data_ptr()
            if ptr not in skip:
                storages[(ptr, value.device)] = value.untyped_storage().nbytes()
        elif isinstance(value, (tuple, list)):
            for v in value:
                count(v)

    loss = forward()
    nodes = [loss.grad_fn]
    while nodes:
        node = nodes.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names = [n for n in dir(node) if n.startswith("_saved_")] + (
            ["saved_tensors"] if hasattr(node, "saved_tensors") else []
        )
        for name in names:
            try:
                count(getattr(node, name))
            except RuntimeError:  # a saved tensor already released
                pass
        nodes.extend(n for n, _ in node.next_functions)
    del loss
    return sum(storages.values()) / 2**20


def train_worker(a):
    import torch
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

    from lrdrop_fairseq.criterions.lr_drop import LRDropCriterion
    from lrdrop_fairseq.models import PLAIN_ARCH

    dtype = torch.float16 if a.fp16 else torch.bfloat16 if a.bf16 else torch.float32
    arch = PLAIN_ARCH[a.arch][0] if a.mode == "plain" else a.arch
    model, d, task = build(arch, a.vocab, a.device, dtype, a.dropout)
    model.train()
    n_sent, src_len, tgt_len = parse_shape(a.shape)
    sample = make_batch(d, n_sent, src_len, a.device, tgt_len=tgt_len)
    w = None if a.mode == "plain" else modes.weights(a.mode, KL, HIDDEN, ATTN)
    common = dict(sentence_avg=False, label_smoothing=0.1)
    if w is not None and a.attn_small_map is not None:
        w["attn_small_map"] = a.attn_small_map
    if w is not None and getattr(a, "attn_recompute_in_backward", False):
        w["attn_recompute_in_backward"] = True
    crit = LabelSmoothedCrossEntropyCriterion(task, **common) if w is None else LRDropCriterion(task, **common, **w)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-4 if dtype != torch.float32 else 1e-8)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    saved_mb = saved_for_backward_mb(lambda: crit(model, sample)[0], exclude=list(model.parameters()))
    for i in range(a.warmup + a.steps):
        sync()
        t = time.perf_counter()
        loss, _, _ = crit(model, sample)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    peak = (
        torch.cuda.max_memory_allocated()
        if a.device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "mode": a.mode,
        "shape": a.shape,
        "median_s": statistics.median(times),
        "times": times,
        "peak_mb": peak / 2**20,
        "saved_mb": saved_mb,
        "target_tokens": sample["ntokens"],
        "criterion_options": w,  # None: label_smoothed_cross_entropy
    }


def generate_worker(a):
    import torch
    from fairseq.sequence_generator import SequenceGenerator

    from lrdrop_fairseq.models import PLAIN_ARCH

    lr_model, d, _ = build(a.arch, a.vocab, a.device, torch.float32, a.dropout)
    # another seed, so that only the copied weights can make the two generate the same
    plain, _, _ = build(PLAIN_ARCH[a.arch][0], a.vocab, a.device, torch.float32, a.dropout, seed=2)
    plain.load_state_dict(lr_model.state_dict())
    n_sent, max_len = map(int, a.gen_shape.split("x"))
    sample = make_batch(d, n_sent, max_len, a.device, seed=1)
    out = {"lrdrop_arch": [], "plain_arch": []}
    hyps = {}
    for m in (lr_model, plain):
        m.eval()
    # alternate the order and take medians: the first generation in a process is slower
    for rep in range(1 + a.gen_reps):
        order = [("lrdrop_arch", lr_model), ("plain_arch", plain)]
        for name, m in order if rep % 2 == 0 else order[::-1]:
            gen = SequenceGenerator([m], d, beam_size=5, max_len_a=1.2, max_len_b=10)
            with torch.no_grad():
                t = time.perf_counter()
                result = gen.generate([m], sample)
                dt = time.perf_counter() - t
            hyps[name] = [h[0]["tokens"].tolist() for h in result]
            if rep > 0:  # rep 0 is the warm-up
                out[name].append((dt, sum(len(h) for h in hyps[name])))
    summary = {}
    for name, runs in out.items():
        dt = statistics.median(r[0] for r in runs)
        summary[name] = {
            "seconds": dt,
            "sent_per_s": n_sent / dt,
            "tok_per_s": runs[0][1] / dt,
            "all_seconds": [r[0] for r in runs],
        }
    summary["identical_hypotheses"] = hyps["lrdrop_arch"] == hyps["plain_arch"]
    return summary


def spawn(a, extra):
    cmd = (
        [
            sys.executable,
            "-m",
            "lrdrop_cli.bin.benchmark_worker",
            *extra,
            "--arch",
            a.arch,
            "--vocab",
            str(a.vocab),
            "--dropout",
            str(a.dropout),
            "--device",
            a.device,
            "--steps",
            str(a.steps),
            "--warmup",
            str(a.warmup),
            "--gen-shape",
            a.gen_shape,
            "--gen-reps",
            str(a.gen_reps),
        ]
        + (["--fp16"] if a.fp16 else [])
        + (["--bf16"] if a.bf16 else [])
        + ([] if getattr(a, "attn_small_map", None) is None else ["--attn-small-map", str(a.attn_small_map)])
        + (["--attn-recompute-in-backward"] if getattr(a, "attn_recompute_in_backward", False) else [])
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "worker.log")
        run(cmd, log=log, name=f"benchmark worker {' '.join(extra)}", quiet=True)
        with open(log, encoding="utf-8") as f:
            return json.loads(f.read().strip().splitlines()[-1])  # the worker's last line


def run_benchmark(a):
    """Every chosen mode at every shape, each in a fresh worker process, then beam search:
    prints the tables and writes --json."""
    import platform

    import torch

    chosen = modes.choose(a.modes, "--modes", "benchmark", MODES)
    try:
        [parse_shape(x) for x in a.shapes.split(",") if x]
    except ValueError as e:
        sys.exit(f"benchmark: --shapes: {e}")
    results = {
        "arch": a.arch,
        "vocab": a.vocab,
        "device": a.device,
        "threads": torch.get_num_threads(),
        "dtype": "fp16" if a.fp16 else "bf16" if a.bf16 else "fp32",
        "steps": a.steps,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "train": [],
        "generate": None,
    }
    print(
        f"# LR-Drop cost: {a.arch}, vocab {a.vocab}, {a.device} ({results['dtype']}), "
        f"median of {a.steps} updates after {a.warmup} warm-up\n"
    )
    print(
        "| shape (sent x tok) | mode | s / update | x baseline | x rdrop | peak MB | x rdrop mem "
        "| saved for backward MB | x rdrop |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in [x for x in a.shapes.split(",") if x]:
        rows = {m: spawn(a, ["train", "--mode", m, "--shape", shape]) for m in chosen}
        results["train"] += list(rows.values())
        base, rd = rows.get("baseline"), rows.get("rdrop")
        for m, r in rows.items():
            xb = f"{r['median_s'] / base['median_s']:.2f}" if base else "-"
            xr = f"{r['median_s'] / rd['median_s']:.2f}" if rd else "-"
            xm = f"{r['peak_mb'] / rd['peak_mb']:.2f}" if rd else "-"
            xs = f"{r['saved_mb'] / rd['saved_mb']:.2f}" if rd else "-"
            print(
                f"| {shape} | {m} | {r['median_s']:.3f} | {xb} | {xr} | {r['peak_mb']:.0f} | {xm} "
                f"| {r['saved_mb']:.0f} | {xs} |",
                flush=True,
            )
    if a.gen_shape:
        g = spawn(a, ["generate"])
        results["generate"] = g
        print(f"\nBeam-5 generation, {a.gen_shape} (sentences x source tokens), median of {a.gen_reps}:\n")
        print("| model | s | sentences/s | tokens/s |")
        print("|---|---|---|---|")
        for k in ("lrdrop_arch", "plain_arch"):
            v = g[k]
            print(f"| {k} | {v['seconds']:.2f} | {v['sent_per_s']:.1f} | {v['tok_per_s']:.0f} |")
        ratio = g["lrdrop_arch"]["seconds"] / g["plain_arch"]["seconds"]
        print(
            f"\n_lrdrop / plain time (medians of {a.gen_reps}, alternating order): {ratio:.3f}; "
            f"identical hypotheses: {g['identical_hypotheses']}"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nwrote {a.json}")
