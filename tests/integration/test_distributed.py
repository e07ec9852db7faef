"""lr_drop under fairseq's own data-parallel training: two gloo ranks on CPU."""

import os
import socket

import torch
from conftest import ROOT, run, tool
from test_cli import ARCH, json_lines


def free_port() -> str:
    """A port the OS has just handed out and released: no clash with another run on the machine."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


USER_DIR = os.path.join(ROOT, "lrdrop_fairseq")
LAUNCH = os.path.join(ROOT, "scripts", "train_distributed.sh")
# dropout 0: each rank samples its own dropout masks, which a single process cannot
# reproduce; with dropout 0 the comparison is exact up to float summation order
# (the consistency terms are then exactly 0, but still computed and all-reduced).
ARGS = [
    *ARCH,
    "--criterion",
    "lr_drop",
    "--label-smoothing",
    "0.1",
    "--dropout",
    "0",
    "--attention-dropout",
    "0",
    "--optimizer",
    "adam",
    "--lr",
    "1e-3",
    "--batch-size",
    "16",
    "--required-batch-size-multiple",
    "1",
    "--seed",
    "1",
    "--num-workers",
    "0",
    "--log-format",
    "json",
    "--log-interval",
    "1",
    "--no-epoch-checkpoints",
    "--max-update",
    "5",
    "--user-dir",
    USER_DIR,
    "--disable-validation",
]


def _params(save_dir):
    state = torch.load(os.path.join(save_dir, "checkpoint_last.pt"), map_location="cpu")
    return state["model"]


FIXED_HALVES = os.path.join(ROOT, "tests", "integration", "fixed_halves")


def test_two_ranks_and_update_freq_equal_one_batch_with_every_term_on(toy_data_uneven, tmp_path):
    """One process x batch 16 == one process x batch 8 x --update-freq 2 == 2 ranks x batch 8,
    with the output KL, hidden and attention terms all non-zero (the halves differ by a fixed rule,
    tests/integration/fixed_halves, since two ranks cannot reproduce one process's dropout masks).
    With --curriculum the batches are not shuffled: batch k of 16 sentences is batches 2k and 2k+1
    of 8, which --update-freq 2 takes in one update and the two ranks take one each. The layer
    terms are sums over sentences, so the three agree; per-batch means (before 2026-12-05) made
    the micro-batches' terms differ from the batch's wherever their source/target ratios differ,
    as this corpus's do (targets 1-3 times their source's length)."""
    toy_data = toy_data_uneven
    terms = ["--hidden-weight", "3", "--attn-weight", "3", "--kl-weight", "1", "--curriculum", "100"]
    args = [a if a != USER_DIR else FIXED_HALVES for a in ARGS] + terms
    saves = {name: str(tmp_path / name) for name in ("batch16", "freq2", "ranks2")}
    out = {
        "batch16": run([tool("fairseq-train"), toy_data, *args, "--batch-size", "16", "--save-dir", saves["batch16"],
                        "--cpu"]).stdout,
        "freq2": run([tool("fairseq-train"), toy_data, *args, "--batch-size", "8", "--update-freq", "2",
                      "--save-dir", saves["freq2"], "--cpu"]).stdout,
        "ranks2": run(["bash", LAUNCH, "--nproc", "2", "--master-port", free_port(), "--", toy_data, *args,
                       "--batch-size", "8", "--save-dir", saves["ranks2"]]).stdout,
    }  # fmt: skip
    assert "distributed init (rank 1)" in out["ranks2"] or "rank 1" in out["ranks2"], out["ranks2"][-3000:]
    logs = {name: json_lines(text, "train_inner")[-5:] for name, text in out.items()}
    for name, records in logs.items():
        assert [int(r["num_updates"]) for r in records] == [1, 2, 3, 4, 5], name
        assert all(float(r[t]) > 0.01 for r in records for t in ("kl_loss", "hidden_loss", "attn_loss")), name
    # the first update, before any parameter differs: every logged term of the three runs agrees
    for term in ("loss", "kl_loss", "hidden_loss", "attn_loss", "objective"):
        values = [float(logs[name][0][term]) for name in saves]
        assert max(values) - min(values) <= 2e-4 * max(abs(v) for v in values) + 1e-4, (term, values)
    params = {name: _params(save) for name, save in saves.items()}
    for name in ("freq2", "ranks2"):
        for k in params["batch16"]:
            if k.endswith("k_proj.bias"):  # its gradient is 0 in exact arithmetic: Adam makes rounding noise a step
                continue
            torch.testing.assert_close(params[name][k], params["batch16"][k], rtol=1e-4, atol=2e-5, msg=(name, k))


def test_a_non_finite_term_on_one_rank_stops_every_rank(toy_data, tmp_path):
    """fp32, 2 ranks, rank 1's attention term NaN from its third forward (tests/integration/
    nan_on_rank1): the criterion does not raise on rank 1 alone, which would leave rank 0 waiting
    in the next all-reduce; fairseq's check of the all-reduced gradients stops both ranks together.
    A hang fails the test (the run's timeout)."""
    nan_dir = os.path.join(ROOT, "tests", "integration", "nan_on_rank1")
    args = [a if a != USER_DIR else nan_dir for a in ARGS]
    args[args.index("--dropout") + 1] = "0.1"
    p = run(
        ["bash", LAUNCH, "--nproc", "2", "--master-port", free_port(), "--", toy_data, *args,
         "--save-dir", str(tmp_path)],
        check=False, timeout=240,
    )  # fmt: skip
    assert p.returncode != 0
    assert p.stdout.count("FloatingPointError: gradients are Nan/Inf") == 2, p.stdout[-4000:]


def test_distributed_resume_from_checkpoint_last(toy_data, tmp_path):
    save = str(tmp_path / "ckpt")
    run(["bash", LAUNCH, "--nproc", "2", "--master-port", free_port(), "--", toy_data, *ARGS, "--save-dir", save])
    args = [a if a != "5" else "8" for a in ARGS]  # --max-update 8
    out = run(
        ["bash", LAUNCH, "--nproc", "2", "--master-port", free_port(), "--", toy_data, *args, "--save-dir", save]
    ).stdout
    assert "Loaded checkpoint" in out and "@ 5 updates" in out, out[-3000:]
    assert max(int(r["num_updates"]) for r in json_lines(out, "train_inner")) == 8


def test_torchrun_without_world_size_is_refused(toy_data, tmp_path):
    p = run(
        [
            tool("torchrun"),
            "--nproc-per-node",
            "2",
            "--master-port",
            free_port(),
            "--no-python",
            tool("fairseq-train"),
            toy_data,
            *ARGS,
            "--save-dir",
            str(tmp_path),
            "--cpu",
        ],
        check=False,
    )
    assert p.returncode != 0
    assert "scripts/train_distributed.sh" in p.stdout and "WORLD_SIZE=2" in p.stdout


def test_uneven_shards_end_the_epoch_without_deadlock(toy_data, tmp_path):
    """600 sentences in batches of 23 make 27 batches: one rank gets fairseq's dummy batch
    (loss weight 0) at the end of the epoch, and both must still finish it."""
    args = [a for a in ARGS if a not in ("--max-update", "5")]
    args[args.index("--batch-size") + 1] = "23"
    args[args.index("--dropout") + 1] = "0.1"  # consistency terms non-zero
    out = run(
        [
            "bash",
            LAUNCH,
            "--nproc",
            "2",
            "--master-port",
            free_port(),
            "--",
            toy_data,
            *args,
            "--max-epoch",
            "1",
            "--save-dir",
            str(tmp_path),
        ],
        timeout=300,
    ).stdout
    assert "done training" in out
    assert "grouped total_num_itrs = 14" in out
    assert float(json_lines(out, "train")[-1]["train_kl_loss"]) > 0
