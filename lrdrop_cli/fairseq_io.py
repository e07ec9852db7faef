"""Running fairseq and reading what it writes: the one place the tools do either.

- :data:`USER_DIR`: what ``--user-dir`` loads, the installed ``lrdrop_fairseq``;
- :func:`fairseq_command`: ``python -m fairseq_cli.TOOL ...`` with this interpreter
  (no reliance on console scripts sitting next to it);
- :func:`run`: the step runner (stream or quiet, log file, a named failure);
- :func:`read_log`: fairseq's JSON log records; :func:`training_seconds`: how long the
  fairseq-train processes of a log ran, a resumed run's included; :func:`read_hypotheses`:
  fairseq-generate's ``D-`` lines in corpus order (also ``lrdrop-hypotheses
  GENERATE_LOG``, which the recipes' shell scripts call).
"""

import datetime
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

# found without importing it: importing lrdrop_fairseq imports fairseq (seconds)
USER_DIR = os.path.dirname(importlib.util.find_spec("lrdrop_fairseq").origin)


class StepFailed(RuntimeError):
    """A command of a pipeline step failed; the message names the step and shows the output's end."""


def fairseq_command(tool: str, *args: str) -> List[str]:
    """``fairseq-TOOL ARGS`` as ``python -m fairseq_cli.TOOL ARGS`` (train, generate, preprocess, ...)."""
    return [sys.executable, "-m", f"fairseq_cli.{tool}", *args]


def run(
    cmd,
    log: Optional[str] = None,
    name: str = "",
    append: bool = False,
    quiet: bool = False,
    env: Optional[dict] = None,
    show: Optional[Callable[[str], Optional[str]]] = None,
):
    """Run ``cmd``, its output going to ``log`` (appended with ``append``: a resumed run continues
    its log). Unless ``quiet``, echo the command and, when logging, fairseq's progress lines, or
    what ``show`` makes of each output line (None: nothing). Raise :class:`StepFailed` naming
    ``name`` with the output's last lines."""
    if not quiet:
        print("$ " + " ".join(cmd), flush=True)
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}  # live progress through the pipe
    with open(log, "a" if append else "w", encoding="utf-8") if log else open(os.devnull, "w") as lf:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        tail = []
        for line in p.stdout:
            lf.write(line)
            lf.flush()
            tail = (tail + [line])[-40:]
            if quiet:
                continue
            if show is not None:
                shown = show(line)
                if shown:
                    print(shown, flush=True)
            elif (
                log is None
                or "| train_inner |" in line
                or "| valid |" in line
                or "| INFO | fairseq_cli.train | done" in line
            ):
                sys.stdout.write(line)
                sys.stdout.flush()
        if p.wait() != 0:
            where = f"; see {log}" if log else ""
            raise StepFailed(f"step '{name}' failed (exit {p.returncode}){where}; last output:\n{''.join(tail)}")


def _record(line: str) -> Optional[dict]:
    """The JSON record of one fairseq log line, or None."""
    start = line.find("{")
    if start < 0 or not line.rstrip().endswith("}"):
        return None
    try:
        rec = json.loads(line[start:])
    except json.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) else None


class TrainingProgress:
    """``run(..., show=TrainingProgress(total))``: one readable line per fairseq progress record,
    e.g. ``[train] update 500/2800 (18%) | 3.1 min, ~14.2 min left | train ppl 61.2 | valid ppl
    48.3 at 400``; the JSON itself goes to the log file only. The time left is extrapolated from
    the pace since this invocation's first record, so neither start-up nor a resumed run's earlier
    updates distort it. With ``minutes`` (the run's ``--stop-time-hours``, counted from this
    invocation's start) the time left is the cap's where the cap comes first, and the line says
    near which update it will stop the run."""

    def __init__(self, total_updates: int, clock: Callable[[], float] = time.time, minutes: Optional[float] = None):
        self.total, self.clock, self.minutes = total_updates, clock, minutes
        self.t0 = clock()
        self.first: Optional[tuple] = None  # (update, time) of the first record
        self.valid: Optional[str] = None

    def __call__(self, line: str) -> Optional[str]:
        if "| INFO | fairseq_cli.train | done" in line:
            return "[train] done"
        rec = _record(line)
        if rec is None or "| train |" in line or "train_loss" in rec:
            return None
        if "valid_loss" in rec:
            self.valid = f"valid ppl {float(rec.get('valid_ppl', 'nan')):.1f} at {rec.get('valid_num_updates', '?')}"
            return f"[train] validation: {self.valid}"
        if "num_updates" not in rec or "loss" not in rec:
            return None
        n, now = int(rec["num_updates"]), self.clock()
        elapsed = now - self.t0
        if self.first is None:
            self.first = (n, now)
        done_here = n - self.first[0]
        pace = (now - self.first[1]) / done_here if done_here > 0 else None
        left = ""
        if pace is not None:
            seconds_left = pace * (self.total - n)
            cap_left = None if self.minutes is None else max(0.0, self.minutes * 60 - elapsed)
            if cap_left is not None and cap_left < seconds_left:
                stop = min(self.total, n + int(cap_left / pace))
                left = f", ~{cap_left / 60:.1f} min left (the {self.minutes:g}-min cap stops it near update {stop})"
            else:
                left = f", ~{seconds_left / 60:.1f} min left"
        parts = [
            f"[train] update {n}/{self.total} ({100 * n / self.total:.0f}%)",
            f"{elapsed / 60:.1f} min{left}",
            f"train ppl {float(rec.get('ppl', 'nan')):.1f}",
        ]
        if self.valid:
            parts.append(self.valid)
        return " | ".join(parts)


def read_log(path) -> Dict[str, List[dict]]:
    """{"train_inner": [...], "valid": [...]} from a fairseq JSON log.

    Reads both fairseq's stdout (``... | train_inner | {...}``) and its
    ``--log-file`` (the bare JSON): records are told apart by their keys
    (``valid_loss`` for validation, ``train_loss`` for epoch summaries, skipped).
    """
    rows = {"train_inner": [], "valid": []}
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = _record(line)
            if rec is None or "| train |" in line or "train_loss" in rec:
                continue  # epoch summaries repeat the train_inner records
            if "valid_loss" in rec:
                rows["valid"].append(rec)
            elif "num_updates" in rec and "loss" in rec:
                rows["train_inner"].append(rec)
    return rows


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \| ")
# the first line fairseq-train writes (its configuration), once per process
_TRAIN_START = "| fairseq_cli.train | {'_name'"


def training_seconds(path) -> float:
    """Seconds that the fairseq-train processes writing the log ``path`` ran, from the
    timestamps of their lines: per process (each begins with its configuration line), its last
    line's time less its first's, summed. A run that was killed and resumed counts every
    process, up to its last line (fairseq's own ``wall`` restarts on resume, and it is not
    kept in ``train_inner`` records); 0.0 for a log without timestamps."""
    total, first, last = 0.0, None, None
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = _STAMP.match(line)
            if not m:
                continue
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
            if first is None or _TRAIN_START in line:
                if first is not None:
                    total += (last - first).total_seconds()
                first = t
            last = t
    if first is not None:
        total += (last - first).total_seconds()
    return total


def read_hypotheses(gen_log, expected: Optional[int] = None) -> List[str]:
    """fairseq-generate's final hypotheses (``D-`` lines: detokenised, BPE removed) in corpus order.
    With ``expected``, raise ValueError unless exactly that many sentences are there."""
    hyps = {}
    with open(gen_log, encoding="utf-8") as f:
        for line in f:
            if line.startswith("D-"):
                idx, _score, text = line.rstrip("\n").split("\t", 2)
                hyps[int(idx[2:])] = text
    n = expected if expected is not None else len(hyps)
    if len(hyps) != n or (hyps and max(hyps) != n - 1):
        raise ValueError(f"{gen_log}: {len(hyps)} hypotheses for {n} sentences")
    return [hyps[i] for i in range(n)]
