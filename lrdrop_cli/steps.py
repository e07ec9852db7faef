"""The pipelines' shared steps: each skips work already done under its output folder, and a
failure names its step (StepFailed). The folder layout: OUT/corpus (raw text), OUT/spm
(sentencepiece pieces), OUT/data-bin, OUT/checkpoints, OUT/train.log, OUT/curves.png."""

import os
import sys
from typing import NamedTuple

from lrdrop_cli import presets
from lrdrop_cli.corpora.common import shuffled_split, write
from lrdrop_cli.fairseq_io import StepFailed, fairseq_command, read_hypotheses, run
from lrdrop_cli.runs import Schedule


def step(n, name, what, total=6, demo="demo"):
    print(f"\n=== [{demo}] step {n}/{total} {name}: {what}", flush=True)


class Folders(NamedTuple):
    """A pipeline's output folder and what it holds."""

    out: str
    raw: str  # the corpus, raw text
    spm: str  # sentencepiece pieces
    data_bin: str
    checkpoints: str
    log: str  # fairseq-train's JSON log


def folders(out) -> Folders:
    """The layout under ``out`` (created); training threads default to the cores, at most 8."""
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(min(os.cpu_count() or 1, 8)))
    paths = (os.path.join(out, d) for d in ("corpus", "spm", "data-bin", "checkpoints", "train.log"))
    return Folders(out, *paths)


def prepare(demo, where: Folders, corpus_step, vocab, langs):
    """Steps 1-3 of a translation-shaped pipeline: corpus (``corpus_step(raw)``), a joint
    sentencepiece model applied to every split, fairseq-preprocess."""
    step(1, "corpus", where.raw, demo=demo)
    corpus_step(where.raw)
    step(2, "spm", where.spm, demo=demo)
    sentencepiece(vocab, where.raw, where.spm, langs)
    step(3, "binarize", where.data_bin, demo=demo)
    binarize(where.spm, where.data_bin, langs)


def user_corpus(raw, paths, flags, langs, unit, n_valid, n_test, seed):
    """Split the user's two aligned files ``paths`` (given as the options ``flags``) into
    train/valid/test under ``raw``, as OUT/corpus/{split}.{lang}; empty pairs are dropped."""

    if not all(paths):
        raise StepFailed(f"corpus: give both {flags[0]} and {flags[1]} (one {unit} per line, aligned)")
    sides = [read_text_lines(path, flag) for path, flag in zip(paths, flags)]
    if len(sides[0]) != len(sides[1]):
        raise StepFailed(
            f"corpus: {flags[0]} has {len(sides[0])} lines but {flags[1]} has {len(sides[1])}; they must be aligned"
        )
    try:
        splits = shuffled_split([(a, b) for a, b in zip(*sides) if a and b], n_valid, n_test, seed)
    except ValueError as e:
        raise StepFailed(f"corpus: {e}")
    write(raw, splits, f"user corpus: {paths[0]} / {paths[1]} (seed {seed})\n", langs)


def read_text_lines(path, flag):
    """The stripped lines of a UTF-8 text file; StepFailed names the option, file and line otherwise."""
    lines = []
    try:
        with open(path, "rb") as f:
            for number, raw_line in enumerate(f, 1):
                lines.append(raw_line.decode("utf-8").strip())
    except UnicodeDecodeError as e:
        raise StepFailed(
            f"corpus: {flag} {path}: line {number} is not valid UTF-8 ({e.reason} at byte "
            f"{e.start}); convert the file, e.g. iconv -f latin1 -t utf-8"
        ) from None
    except OSError as e:
        raise StepFailed(f"corpus: {flag} {path}: {e.strerror}") from None
    return lines


def finished_training(ckpt_dir, log):
    """The best checkpoint if an earlier run of the train step completed, else None."""
    best = os.path.join(ckpt_dir, "checkpoint_best.pt")
    if os.path.isfile(best) and os.path.isfile(log) and "done training" in open(log, encoding="utf-8").read():
        print(f"(done already: {best})")
        return best
    return None


def add_training_args(ap):
    """The loss and optimisation options the pipelines share (:func:`fixed_schedule` reads them)."""
    ap.add_argument("--kl-weight", type=float, default=1.0)
    for term in ("hidden", "attn"):
        ap.add_argument(f"--{term}-weight", type=float, help="default: the mode's (lrdrop-modes lrdrop prints them)")
    ap.add_argument(
        "--save-every",
        type=int,
        default=200,
        help="with a fixed number of updates: a resumable checkpoint every this many updates (~1 minute "
        "on 2 CPU cores), so an interrupted run loses little (fairseq also validates there)",
    )
    cpu, cuda = presets.TRAINING_DEFAULTS["cpu"], presets.TRAINING_DEFAULTS["cuda"]
    for name, kind in (("dropout", float), ("lr", float), ("warmup", int), ("max-tokens", int)):
        key = name.replace("-", "_")
        ap.add_argument(
            f"--{name}",
            type=kind,
            help=f"default {cpu[key]:g} on cpu, {cuda[key]:g} on cuda",
        )


def model_kind(args):
    """'cpu' or 'cuda': which demo model (and its defaults) to train; compare.py's
    ``--model cpu --device cuda`` trains the CPU demo's model on a GPU."""
    return getattr(args, "model", None) or args.device


def parse_args(ap, argv=None):
    """``ap.parse_args`` plus the device's training defaults. ``--train-args --fp16``
    (one flag, no space) would make argparse read ``--fp16`` as an option of its own:
    join such values to their option first."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == "--train-args":
            argv[i : i + 2] = [f"--train-args={argv[i + 1]}"]
            break
    args = ap.parse_args(argv)
    for key, value in presets.TRAINING_DEFAULTS[model_kind(args)].items():
        if getattr(args, key, value) is None:
            setattr(args, key, value)
    return args


PROTECTED_SYMBOLS = "protected_symbols.txt"  # placeholders a corpus asks to keep as single pieces


def _train_spm(spm, raw, spm_dir, vocab, langs):
    symbols_file = os.path.join(raw, PROTECTED_SYMBOLS)
    symbols = []
    if os.path.isfile(symbols_file):
        symbols = [s.strip() for s in open(symbols_file, encoding="utf-8") if s.strip()]
    spm.SentencePieceTrainer.train(
        user_defined_symbols=symbols,
        input=[os.path.join(raw, f"train.{lang}") for lang in langs],
        model_prefix=os.path.join(spm_dir, "spm"),
        vocab_size=vocab,
        model_type="bpe",
        character_coverage=1.0,
        num_threads=2,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        unk_id=0,
        minloglevel=2,
    )


def sentencepiece(vocab, raw, spm_dir, langs=("de", "en")):
    """A joint BPE model over both sides of train, applied to every split."""
    model = os.path.join(spm_dir, "spm.model")
    if os.path.isfile(os.path.join(spm_dir, f"test.{langs[-1]}")):
        print(f"(done already: {spm_dir})")
        return model
    import sentencepiece as spm

    os.makedirs(spm_dir, exist_ok=True)
    try:
        _train_spm(spm, raw, spm_dir, vocab, langs)
    except RuntimeError as e:
        raise StepFailed(f"spm: sentencepiece training failed (--vocab {vocab}): {e}")
    sp = spm.SentencePieceProcessor(model_file=model)
    for split in ("train", "valid", "test"):
        for lang in langs:
            with open(os.path.join(raw, f"{split}.{lang}"), encoding="utf-8") as f, open(
                os.path.join(spm_dir, f"{split}.{lang}"), "w", encoding="utf-8"
            ) as g:
                for line in f:
                    g.write(" ".join(sp.encode(line.strip(), out_type=str)) + "\n")
    print(f"joint BPE vocabulary {vocab}: {model}")
    return model


def binarize(spm_dir, data_bin, langs=("de", "en")):
    src, tgt = langs
    if os.path.isfile(os.path.join(data_bin, f"test.{src}-{tgt}.{tgt}.bin")):
        print(f"(done already: {data_bin})")
        return
    run(
        fairseq_command(
            "preprocess",
            "--source-lang",
            src,
            "--target-lang",
            tgt,
            "--trainpref",
            f"{spm_dir}/train",
            "--validpref",
            f"{spm_dir}/valid",
            "--testpref",
            f"{spm_dir}/test",
            "--destdir",
            data_bin,
            "--joined-dictionary",
            "--workers",
            "2",
        ),
        log=os.path.join(os.path.dirname(data_bin), "preprocess.log"),
        name="binarize",
    )


def plot(log, out):
    """The plot step: OUT/curves.png from the training log."""
    from lrdrop_cli import curves

    try:
        curves.plot([("lr_drop", log)], os.path.join(out, "curves.png"))
    except ValueError as e:
        raise StepFailed(f"plot: {e}")


def collect_hypotheses(gen_log, raw, langs, hyp_file, name):
    """fairseq-generate's detokenised hypotheses in test order, written to ``hyp_file``;
    returns (hypotheses, references, sources)."""
    with open(os.path.join(raw, f"test.{langs[1]}"), encoding="utf-8") as f:
        refs = [line.rstrip("\n") for line in f]
    with open(os.path.join(raw, f"test.{langs[0]}"), encoding="utf-8") as f:
        srcs = [line.rstrip("\n") for line in f]
    try:
        ordered = read_hypotheses(gen_log, len(refs))
    except ValueError as e:
        raise StepFailed(f"{name}: {e}")
    with open(hyp_file, "w", encoding="utf-8") as f:
        f.writelines(h + "\n" for h in ordered)
    return ordered, refs, srcs


def fixed_schedule(args) -> Schedule:
    """A fixed budget of ``args.updates`` (the demos' schedule), from the training options."""
    return Schedule(lr=args.lr, warmup=args.warmup, max_tokens=args.max_tokens, updates=args.updates,
                    save_every=args.save_every, minutes=args.minutes)  # fmt: skip


def translation_model(args):
    """The translation demo's model preset for ``model_kind(args)``."""
    return presets.TRANSLATION_GPU if model_kind(args) == "cuda" else presets.TRANSLATION_CPU
