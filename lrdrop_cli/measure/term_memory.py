"""What the output KL and the hidden MSE keep for the backward, beyond their inputs.

    python -m lrdrop_cli.measure.term_memory [--tokens 4096] [--vocab 10000] [--dim 512]

The output KL on log-probabilities of 2 x TOKENS positions over VOCAB (fp32, as fairseq's
criteria compute them), the hidden MSE of one layer's (TOKENS, 2, DIM) states in fp32 and fp16:
MB that each term's graph holds for the backward beyond what its inputs' own graph holds
(:func:`lrdrop_cli.measure.benchmark.saved_for_backward_mb`). Exact, whatever else runs.
"""

import argparse
import json


def term_memory(tokens=4096, vocab=10000, dim=512):
    import torch

    from lrdrop import consistency as C
    from lrdrop_cli.measure.benchmark import saved_for_backward_mb

    torch.manual_seed(0)
    logits = torch.randn(2 * tokens, vocab, requires_grad=True)
    inputs_only = saved_for_backward_mb(lambda: logits.log_softmax(-1).sum())
    kl = saved_for_backward_mb(lambda: C.symmetric_kl_from_log_probs(*C.split_halves(logits.log_softmax(-1), 0)))
    row = {"output_kl_mb": round(kl - inputs_only, 1), "log_probs_mb": round(inputs_only, 1)}
    for dtype in (torch.float32, torch.float16):
        states = torch.randn(tokens, 2, dim).to(dtype).requires_grad_(True)
        mb = saved_for_backward_mb(lambda: C.hidden_consistency(*C.split_halves(states * 1, 1), None, "mse"))
        row[f"hidden_mse_{str(dtype).split('.')[-1]}_mb"] = round(mb, 1)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=512)
    a = ap.parse_args(argv)
    print(json.dumps({"tokens": a.tokens, "vocab": a.vocab, "dim": a.dim, **term_memory(a.tokens, a.vocab, a.dim)}))


if __name__ == "__main__":
    main()
