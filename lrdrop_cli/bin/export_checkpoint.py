"""Export a checkpoint trained with a ``*_lrdrop`` architecture to plain fairseq.

    lrdrop-export checkpoints/checkpoint_best.pt exported.pt
    fairseq-generate DATA --path exported.pt --required-batch-size-multiple 1 ...   # no --user-dir

Score with ``--required-batch-size-multiple 1``: without it, fairseq-fixed 0.12.3.1 (what Python
3.11+ installs) drops the last batch of a test set whose size is not a multiple of 8 (30 test
sentences gave 24 translations, with no warning); the plugin repairs that, plain fairseq-fixed
does not. fairseq 0.12.2 keeps every sentence.

The weights are unchanged; the architecture name becomes fairseq's
(``transformer_lrdrop_iwslt_de_en`` -> ``transformer_iwslt_de_en``), the
criterion name ``label_smoothed_cross_entropy``, and the optimizer state is
dropped unless ``--keep-optimizer-state``.
"""

import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="checkpoint of an *_lrdrop architecture")
    ap.add_argument("output", help="where to write the plain-fairseq checkpoint")
    ap.add_argument(
        "--keep-optimizer-state",
        action="store_true",
        help="keep the optimizer state (to continue training with plain fairseq)",
    )
    a = ap.parse_args(argv)

    import torch

    import lrdrop_fairseq  # noqa: F401  (safe-load allow-list, arch registry)
    from lrdrop_fairseq.export import to_plain_fairseq

    if not os.path.isfile(a.checkpoint):
        sys.exit(f"export_checkpoint: no such file: {a.checkpoint}")
    state = torch.load(a.checkpoint, map_location="cpu")
    try:
        plain = to_plain_fairseq(state, keep_optimizer_state=a.keep_optimizer_state)
    except ValueError as e:
        sys.exit(f"export_checkpoint: {e}")
    torch.save(plain, a.output)
    print(
        f"exported {a.checkpoint} ({state['cfg']['model'].arch if hasattr(state['cfg']['model'], 'arch') else '?'}) "
        f"-> {a.output} ({plain['cfg']['model']['arch']})\n"
        f"score it without the plugin as: fairseq-generate DATA --path {a.output} --required-batch-size-multiple 1 "
        "... (fairseq-fixed otherwise drops the last batch of a test set whose size is not a multiple of 8)"
    )


if __name__ == "__main__":
    main()
