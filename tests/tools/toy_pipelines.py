"""What the pipeline tests share: a toy user corpus, its data steps, and interrupting a command."""

import os
import random
import signal
import subprocess
import time

from conftest import run, tool

from lrdrop_cli.corpora.toy import make_pair


def user_corpus_files(tmp_path, n, seed):
    """TMP/src.txt and TMP/tgt.txt: an aligned toy corpus (lrdrop-make-toy-corpus); returns the pairs."""
    rng = random.Random(seed)
    pairs = [make_pair(rng, 20, 3, 8) for _ in range(n)]
    (tmp_path / "src.txt").write_text("".join(p[0] + "\n" for p in pairs))
    (tmp_path / "tgt.txt").write_text("".join(p[1] + "\n" for p in pairs))
    return pairs


def toy_data(tmp_path):
    """The toy corpus through lrdrop-demo's data steps (--src/--tgt: the old spellings still work)."""
    user_corpus_files(tmp_path, n=300, seed=5)
    data = tmp_path / "data"
    run([tool("lrdrop-demo"), "--out", str(data), "--src", str(tmp_path / "src.txt"), "--tgt",
         str(tmp_path / "tgt.txt"), "--vocab", "26", "--valid-size", "20", "--test-size", "20",
         "--data-only"])  # fmt: skip
    return data


def log_says(log, text):
    """A ready() for :func:`interrupt_when`: ``text`` has appeared in the log file ``log``."""
    return lambda: log.exists() and text in log.read_text(encoding="utf-8", errors="replace")


def interrupt_when(cmd, ready, timeout=300):
    """Start ``cmd``, kill it (and its children) as soon as ``ready()`` is true, as a user's Ctrl-C
    or a lost machine would."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and p.poll() is None:
        time.sleep(0.1)
    if p.poll() is None:  # else it ended by itself; the caller's checks say so
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
