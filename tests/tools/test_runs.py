"""The typed run configs (lrdrop_cli.runs, steps.parse_args): every flag of the train and generate
commands, device defaults, the best checkpoint's direction."""

import argparse


def test_demo_options_device_defaults_and_single_flag_train_args():

    from lrdrop_cli import runs, steps

    ap = argparse.ArgumentParser()
    steps.add_training_args(ap)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--train-args", default="")
    cpu = steps.parse_args(ap, ["--train-args", "--fp16"])
    assert cpu.train_args == "--fp16"  # argparse alone: "expected one argument"
    assert (cpu.lr, cpu.dropout, cpu.warmup, cpu.max_tokens) == (3e-3, 0.1, 150, 1536)
    gpu = steps.parse_args(ap, ["--device", "cuda", "--lr", "5e-4"])
    assert (gpu.lr, gpu.dropout, gpu.max_tokens) == (5e-4, 0.3, 4096)  # the user's value wins

    def command(args):
        schedule = runs.Schedule(lr=args.lr, warmup=args.warmup, max_tokens=args.max_tokens, updates=10)
        train_run = runs.TrainRun("data", "ckpt", ["--criterion", "lr_drop"], schedule, device=args.device,
                                  model=steps.translation_model(args))  # fmt: skip
        return runs.train_command(train_run)

    cmd = command(gpu)
    assert "--fp16" in cmd and "--cpu" not in cmd and cmd[cmd.index("--encoder-embed-dim") + 1] == "256"
    # compare.py's --device cuda --model cpu: the CPU demo's model and defaults, in fp32, on a GPU
    ap.add_argument("--model", choices=("cpu", "cuda"))
    small = steps.parse_args(ap, ["--device", "cuda", "--model", "cpu"])
    cmd = command(small)
    assert small.lr == 3e-3 and "--fp16" not in cmd and "--cpu" not in cmd
    assert cmd[cmd.index("--encoder-embed-dim") + 1] == "128"


def test_train_command_from_a_typed_run():
    """Every flag of a run to convergence and of a fixed budget, in order, the user's last."""
    from lrdrop_cli import runs
    from lrdrop_cli.fairseq_io import USER_DIR

    schedule = runs.Schedule(lr=0.003, warmup=150, max_tokens=1536, updates=15000, patience=5, keep_checkpoints=2)
    train_run = runs.TrainRun("bin", "ckpt", ["--criterion", "lr_drop", "--kl-weight", "1"], schedule, seed=3,
                              dropout=0.3, model=["--encoder-layers", "2"], task=["--truncate-source"],
                              train_args="--max-epoch 7")  # fmt: skip
    cmd = runs.train_command(train_run)
    assert cmd[cmd.index("bin") :] == [
        "bin", "--user-dir", USER_DIR, "--arch", "transformer_lrdrop", "--encoder-layers", "2", "--truncate-source",
        "--share-all-embeddings", "--criterion", "lr_drop", "--kl-weight", "1", "--dropout", "0.3",
        "--attention-dropout", "0.1", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", "0.003",
        "--weight-decay", "0.0001", "--max-tokens", "1536", "--max-epoch", "1000", "--save-dir", "ckpt",
        "--best-checkpoint-metric", "nll_loss", "--seed", "3", "--num-workers", "0", "--log-format", "json",
        "--log-interval", "25", "--lr-scheduler", "reduce_lr_on_plateau", "--lr-shrink", "0.5", "--lr-patience", "1",
        "--lr-threshold", "0.001", "--warmup-updates", "150", "--warmup-init-lr", "0.00030000000000000003",
        "--stop-min-lr", "0.0002", "--max-update", "15000", "--patience", "5", "--keep-last-epochs", "2",
        "--cpu", "--max-epoch", "7",
    ]  # fmt: skip
    fixed = runs.Schedule(lr=0.001, warmup=10, max_tokens=500, updates=100, save_every=20, minutes=6)
    cmd = runs.train_command(runs.TrainRun("bin", "ckpt", [], fixed, device="cuda", share_embeddings=False))
    assert "--share-all-embeddings" not in cmd  # a classifier has one embedding table
    assert cmd[cmd.index("--lr-scheduler") :] == [
        "--lr-scheduler", "polynomial_decay", "--warmup-updates", "10", "--total-num-update", "100",
        "--max-update", "100", "--end-learning-rate", "0", "--no-epoch-checkpoints", "--save-interval-updates", "20",
        "--keep-interval-updates", "1", "--stop-time-hours", "0.1000",
    ]  # fmt: skip
    generate = runs.generate_command("bin", "best.pt", "cpu", ["--beam", "4"], ["--truncate-source"], max_tokens=80)
    assert generate[generate.index("bin") :] == [
        "bin", "--user-dir", USER_DIR, "--path", "best.pt", "--gen-subset", "test", "--truncate-source", "--beam", "4",
        "--max-tokens", "80", "--remove-bpe", "sentencepiece", "--cpu",
    ]  # fmt: skip
    assert "--cpu" not in runs.generate_command("bin", "best.pt", "cuda")


def test_best_checkpoint_direction_follows_the_metric():
    from lrdrop_cli import runs

    schedule = runs.Schedule(lr=1e-3, warmup=1, max_tokens=100, updates=10)
    nll = runs.train_command(runs.TrainRun("d", "c", [], schedule))
    acc = runs.train_command(runs.TrainRun("d", "c", [], schedule, best_metric="accuracy"))
    assert (
        nll[nll.index("--best-checkpoint-metric") + 1] == "nll_loss" and "--maximize-best-checkpoint-metric" not in nll
    )
    assert acc[acc.index("--best-checkpoint-metric") + 1] == "accuracy" and "--maximize-best-checkpoint-metric" in acc
