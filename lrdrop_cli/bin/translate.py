"""Translate sentences with a demo (or any sentencepiece) model, in the direction it was trained.

    lrdrop-translate [--run runs/demo] [--beam 5] ["Ein Satz." ...]

With sentences as arguments, translates them; otherwise reads one sentence per
line from standard input (type, press Enter; Ctrl-D ends). The sentencepiece
model is applied on the way in and out. For another model pass --checkpoint,
--data-bin and --spm explicitly.
"""

import argparse
import os
import sys


def load(checkpoint, data_bin, spm_model, cpu=True):
    import lrdrop_fairseq  # noqa: F401  (first: registers the archs; keeps fairseq from reconfiguring logging)

    # isort: split
    from fairseq.models.transformer import TransformerModel

    for path, what in ((checkpoint, "--checkpoint"), (spm_model, "--spm"), (data_bin, "--data-bin")):
        if not os.path.exists(path):
            raise FileNotFoundError(f"{what}: {path} does not exist (train first, e.g. 'make demo')")
    # the languages (and so the direction) are the checkpoint's own task settings
    model = TransformerModel.from_pretrained(
        os.path.dirname(os.path.abspath(checkpoint)),
        checkpoint_file=os.path.basename(checkpoint),
        data_name_or_path=os.path.abspath(data_bin),
        bpe="sentencepiece",
        sentencepiece_model=spm_model,
    )
    model.eval()
    return model if cpu else model.cuda()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sentences", nargs="*")
    ap.add_argument("--run", default=os.path.join("runs", "demo"), help="a demo output folder")
    ap.add_argument("--checkpoint", help="default RUN/checkpoints/checkpoint_best.pt")
    ap.add_argument("--data-bin", help="default RUN/data-bin (for the dictionary)")
    ap.add_argument("--spm", help="default RUN/spm/spm.model")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--cuda", action="store_true")
    a = ap.parse_args(argv)
    try:
        model = load(
            a.checkpoint or os.path.join(a.run, "checkpoints", "checkpoint_best.pt"),
            a.data_bin or os.path.join(a.run, "data-bin"),
            a.spm or os.path.join(a.run, "spm", "spm.model"),
            cpu=not a.cuda,
        )
    except FileNotFoundError as e:
        sys.exit(f"translate: {e}")
    if a.sentences:
        for s in a.sentences:
            print(model.translate(s, beam=a.beam))
        return
    if sys.stdin.isatty():
        task = model.cfg.task
        print(
            f"Type a sentence ({task.source_lang} -> {task.target_lang}) and press Enter (Ctrl-D to quit).",
            file=sys.stderr,
        )
    for line in sys.stdin:
        if line.strip():
            print(model.translate(line.strip(), beam=a.beam), flush=True)


if __name__ == "__main__":
    main()
