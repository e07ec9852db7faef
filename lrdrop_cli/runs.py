"""The one fairseq-train and the one fairseq-generate command of the tools, from typed configs.

A :class:`TrainRun` says everything a training run needs (model preset, schedule, criterion
flags, task flags); :func:`train_command` turns it into fairseq-train's arguments. Every
pipeline (the three demos, lrdrop-compare) builds its runs this way.
"""

import dataclasses
import shlex
from typing import List, Optional, Sequence

from lrdrop_cli import presets
from lrdrop_cli.fairseq_io import USER_DIR, fairseq_command


@dataclasses.dataclass
class Schedule:
    """How long and how fast: a fixed budget of ``updates`` (warm-up, then linear decay to 0),
    or, with ``patience``, until validation perplexity stops improving (``updates`` a cap)."""

    lr: float
    warmup: int
    max_tokens: int
    updates: int
    patience: Optional[int] = None
    keep_checkpoints: int = 1  # with patience: epoch checkpoints kept
    save_every: Optional[int] = None  # fixed budget: a resumable checkpoint every this many updates
    minutes: Optional[float] = None  # stop after this long, whatever is left


@dataclasses.dataclass
class TrainRun:
    data_bin: str
    save_dir: str
    criterion: Sequence[str]  # the criterion's flags (modes.criterion_flags)
    schedule: Schedule
    seed: int = 1
    dropout: float = 0.1
    device: str = "cpu"
    arch: str = "transformer_lrdrop"
    model: Sequence[str] = tuple(presets.TRANSLATION_CPU)  # the arch's shape flags
    task: Sequence[str] = ()  # task flags (languages, truncation, heads)
    weight_decay: float = 0.0001
    best_metric: str = "nll_loss"  # checkpoint_best's; accuracy is maximised
    share_embeddings: bool = True  # --share-all-embeddings (a classifier has one table)
    train_args: str = ""  # the user's extra fairseq-train arguments, appended last


def train_command(run: TrainRun) -> List[str]:
    s = run.schedule
    cmd = fairseq_command(
        "train", run.data_bin, "--user-dir", USER_DIR, "--arch", run.arch, *run.model, *run.task,
        *(["--share-all-embeddings"] if run.share_embeddings else []), *run.criterion,
        "--dropout", str(run.dropout), "--attention-dropout", "0.1",
        "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", str(s.lr),
        "--weight-decay", str(run.weight_decay), "--max-tokens", str(s.max_tokens), "--max-epoch", "1000",
        "--save-dir", run.save_dir,
        # checkpoint_best by perplexity: the default metric, the label-smoothed loss, bottoms out
        # mid-run as the model grows confident (epoch 13 of 22 here: test BLEU 4.90 vs 5.53 at the end)
        "--best-checkpoint-metric", run.best_metric,
        *(["--maximize-best-checkpoint-metric"] if run.best_metric == "accuracy" else []),
        "--seed", str(run.seed), "--num-workers", "0", "--log-format", "json", "--log-interval", "25",
    )  # fmt: skip
    if s.patience:
        # until validation perplexity stops improving: validate every epoch; two epochs in a row
        # that improve the best perplexity by less than 0.1% (0.005 bits at 5 bits) halve the
        # learning rate, and training stops after the 4th halving, or after `patience` epochs
        # without any new best; `updates` caps it. The warm-up starts above the stopping lr.
        cmd += [
            "--lr-scheduler", "reduce_lr_on_plateau", "--lr-shrink", "0.5", "--lr-patience", "1",
            "--lr-threshold", "0.001", "--warmup-updates", str(s.warmup), "--warmup-init-lr", str(s.lr / 10),
            "--stop-min-lr", str(s.lr / 15), "--max-update", str(s.updates), "--patience", str(s.patience),
            "--keep-last-epochs", str(s.keep_checkpoints),
        ]  # fmt: skip
    else:
        # a budget known in advance: warm up, then decay linearly to 0 at the last update
        cmd += [
            "--lr-scheduler", "polynomial_decay", "--warmup-updates", str(s.warmup),
            "--total-num-update", str(s.updates), "--max-update", str(s.updates), "--end-learning-rate", "0",
            "--no-epoch-checkpoints",
        ]  # fmt: skip
        if s.save_every:  # a resumable checkpoint mid-epoch (fairseq validates there too)
            cmd += ["--save-interval-updates", str(s.save_every), "--keep-interval-updates", "1"]
    if s.minutes:
        cmd += ["--stop-time-hours", f"{s.minutes / 60:.4f}"]
    if run.device == "cpu":
        cmd.append("--cpu")
    return cmd + shlex.split(run.train_args)  # last, so they override the presets


def generate_command(data_bin: str, checkpoint: str, device: str = "cpu",
                     decoding: Sequence[str] = tuple(presets.TRANSLATION_DECODING), task: Sequence[str] = (),
                     max_tokens: int = 6000) -> List[str]:  # fmt: skip
    """fairseq-generate on the test split, sentencepiece removed: ``decoding`` (beam, lengths)
    and ``task`` flags (languages, truncation) as the pipeline trained."""
    return fairseq_command(
        "generate", data_bin, "--user-dir", USER_DIR, "--path", checkpoint, "--gen-subset", "test",
        *task, *decoding, "--max-tokens", str(max_tokens), "--remove-bpe", "sentencepiece",
        *(["--cpu"] if device == "cpu" else []),
    )  # fmt: skip
