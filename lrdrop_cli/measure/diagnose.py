"""What the layer terms do to a trained model: state scale, LayerNorm gains, gradient shares, attention sharpness.

    lrdrop-diagnose CHECKPOINT [CHECKPOINT ...] --data-bin DIR [--batches 8] [--json FILE]

For each checkpoint (any ``transformer_lrdrop``/``bart_lrdrop`` run, whatever loss
it was trained with), on the same --batches training batches (the first of the
training epoch shuffled with seed 1: fairseq's batches hold sentences of similar
length, so these spread over the corpus's lengths) with the same dropout masks:

- LayerNorm gains: the ``final_layer_norm`` of each post-norm layer (its output is
  the layer output that ``--hidden-site layer`` compares) vs every other LayerNorm;
- RMS of the layer outputs and of the FFN outputs (``--hidden-site ffn``), the first copy's real
  tokens (as lr_drop logs ``ffn_rms`` / ``layer_rms`` while training);
- every candidate consistency term per target token: output KL, attention, and
  the hidden term at both sites with both distances;
- each term's gradient (at weight 1) against the cross-entropy's: its norm as a
  fraction of the CE gradient's norm, and the cosine between the two. A negative
  cosine means the term pulls against fitting;
- the entropy (bits) of each attention type's rows (pre-dropout, every head and
  layer, real queries): what the attention term leaves of the model's attention
  (a one-hot row has 0 bits), beside the entropy of uniform rows over the same keys
  (``attn_uniform_entropy_*``: log2 of each row's number of keys, from the padding and the
  causal mask);
- the spread of each attention type's scores (``q k^T / sqrt(d)`` before the softmax): their
  standard deviation over a row's unmasked keys, in nats, over the first copy's real query rows
  (:func:`lrdrop.attention.attention_score_sd`, the figure lr_drop logs as ``attn_sd_TYPE``). Two
  copies' maps agree more when the scores shrink (at 0 every row is uniform, whatever the
  dropout noise), so this shows whether the attention term is met by flattening attention.

Prints one table row per checkpoint (update from the checkpoint) and writes them
all to --json.
"""

import json
import math
import os
import sys

import torch

CANDIDATES = [("layer", "mse"), ("layer", "cosine"), ("ffn", "mse"), ("ffn", "cosine")]


def load(path, data_bin):

    import lrdrop_fairseq  # noqa: F401  (first: registers the archs; keeps fairseq from reconfiguring logging)

    # isort: split
    from fairseq import checkpoint_utils

    overrides = {"data": data_bin}
    # fairseq's own loader, with the safe globals compat.py registers: one load for model and step
    state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides=overrides)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides, state=state)
    return models[0].float(), cfg, task, int(state.get("optimizer_history", [{}])[-1].get("num_updates", 0))


def batches(task, n, max_tokens):
    task.load_dataset("train")
    itr = task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=max_tokens, seed=1, ignore_invalid_inputs=True
    ).next_epoch_itr(shuffle=True)  # the batch order of seed 1's first epoch: every length, not the shortest
    out = []
    for sample in itr:
        out.append(sample)
        if len(out) == n:
            break
    return out


def layer_norm_gains(model):
    compared, others = [], []
    for stack in (model.encoder, model.decoder):
        for layer in stack.layers:
            for name, m in layer.named_children():
                if isinstance(m, torch.nn.LayerNorm):
                    (compared if name == "final_layer_norm" else others).append(m.weight.detach())
    cat = torch.cat(compared)
    return {
        "ln_compared_mean": cat.mean().item(),
        "ln_compared_min": cat.min().item(),
        "ln_other_mean": torch.cat(others).mean().item(),
    }


def _grad(value, params):
    """d value / d params as one flat vector (zeros where a parameter does not reach it)."""
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def diagnose(model, task, samples, seed=1):
    from lrdrop.attention import attention_score_sd
    from lrdrop.consistency import double, split_halves
    from lrdrop.records import QUERY_SIDE
    from lrdrop_fairseq.criterions.lr_drop import LRDropCriterion

    params = [p for p in model.parameters() if p.requires_grad]
    sums = {}

    def add(key, value):
        sums[key] = sums.get(key, 0.0) + value

    model.train()
    for sample in samples:
        ntok = sample["ntokens"]
        g_ce = None
        for site, dist in CANDIDATES:
            crit = LRDropCriterion(
                task,
                sentence_avg=False,
                label_smoothing=0.1,
                kl_weight=1,
                hidden_weight=1,
                attn_weight=1,
                hidden_loss=dist,
                hidden_site=site,
            )
            torch.manual_seed(seed)  # the same dropout masks for every candidate
            ce, _, terms, net_output, _ = crit.training_terms(model, sample)
            if dist == "mse":
                add(f"rms_{site}", _rms(net_output[1]["lrdrop"], double(sample["target"]).eq(crit.padding_idx)))
            if g_ce is None:  # same masks, same cross-entropy for every candidate: its gradient once
                g_ce = _grad(ce / ntok, params)
            names = {"hidden_loss": f"hidden_{site}_{dist}"}
            if (site, dist) == CANDIDATES[0]:
                names.update({"kl_loss": "kl", "attn_loss": "attn"})
                records = net_output[1]["lrdrop"]
                target_pad = double(sample["target"]).eq(crit.padding_idx)
                query_pads = {"encoder": records["encoder_padding_mask"], "decoder": target_pad}
                for attn_type, recs in records["attn"].items():
                    pad = query_pads[QUERY_SIDE[attn_type]]
                    pad1 = None if pad is None else split_halves(pad, 0)[0]
                    with torch.no_grad():
                        maps = [r if torch.is_tensor(r) else r.probs() for r in recs]
                        ent = [attention_entropy(m, pad) for m in maps]
                        # the first copy's rows, as lr_drop logs attn_sd_TYPE while training
                        spread = [attention_score_sd(split_halves(m, 1)[0], pad1).item() for m in maps]
                        uniform = attention_uniform_entropy(key_counts(attn_type, records, pad), pad)
                    add(f"attn_entropy_{attn_type}", sum(ent) / len(ent))
                    add(f"attn_uniform_entropy_{attn_type}", uniform)
                    add(f"attn_score_sd_{attn_type}", sum(spread) / len(spread))
            for term, label in names.items():
                per_token = terms[term] / ntok  # every term is a sum in target-token units
                g = _grad(per_token, params)
                add(label, per_token.item())
                add(f"{label}_grad_ratio", (g.norm() / g_ce.norm()).item())
                add(f"{label}_grad_cos", torch.nn.functional.cosine_similarity(g, g_ce, dim=0).item())
    return {k: v / len(samples) for k, v in sums.items()}


def attention_entropy(maps, query_pad=None):
    """Mean entropy in bits of the rows of (H, 2B, Tq, Tk) attention maps, over the real queries
    (``query_pad``: (2B, Tq), True = pad); a masked key's zero counts as 0 log 0 = 0."""
    p = maps.float()
    return _real_rows_mean(-(p * p.clamp_min(1e-30).log2()).sum(-1), query_pad)


def key_counts(attn_type, records, query_pad):
    """(2B, Tq): how many keys each query of ``attn_type`` may attend to: the source's real tokens
    (encoder self and encoder-decoder), or the target positions up to its own (decoder self; the
    target is right-padded, so a real query sees no pad)."""
    if attn_type == "decoder_self":
        rows, tq = query_pad.shape
        return torch.arange(1, tq + 1).expand(rows, tq)
    source = (~records["encoder_padding_mask"]).sum(1, keepdim=True)  # (2B, 1)
    return source.expand(-1, query_pad.shape[1])


def attention_uniform_entropy(counts, query_pad=None):
    """What :func:`attention_entropy` would give for uniform rows over the same keys: the mean over
    the real query rows of log2 of their number of keys (``counts``: (2B, Tq))."""
    return _real_rows_mean(counts.float().log2(), query_pad)


def _real_rows_mean(per_row, query_pad=None):
    """The mean of per-row values ((2B, Tq), or (H, 2B, Tq) per head) over the real queries
    (``query_pad``: (2B, Tq), True = pad)."""
    if query_pad is None:
        return per_row.mean().item()
    return per_row[(~query_pad).expand_as(per_row)].mean().item()


def _rms(records, target_pad):
    """The root mean square of the recorded states of the first copy over its real tokens, each
    layer's mean square weighted alike (as lr_drop logs ``ffn_rms`` / ``layer_rms``)."""
    from lrdrop.consistency import mean_square, split_halves

    pads = {"encoder": records["encoder_padding_mask"], "decoder": target_pad}
    squares = []
    for side in ("encoder", "decoder"):
        pad = pads[side]
        pad1 = None if pad is None else split_halves(pad, 0)[0].t()
        squares += [mean_square(split_halves(h, 1)[0], pad1).item() for h in records.get(f"{side}_states") or []]
    return math.sqrt(sum(squares) / len(squares))


def run_diagnose(a):
    """One row per checkpoint of the parsed command line ``a``: printed, and written to --json."""
    rows = []
    cols = [
        "update",
        "ln_compared_mean",
        "ln_compared_min",
        "ln_other_mean",
        "rms_layer",
        "rms_ffn",
        "hidden_layer_mse",
        "hidden_layer_mse_grad_ratio",
        "hidden_layer_mse_grad_cos",
        "hidden_ffn_mse_grad_ratio",
        "hidden_ffn_mse_grad_cos",
        "hidden_layer_cosine_grad_ratio",
        "hidden_layer_cosine_grad_cos",
        "kl_grad_ratio",
        "kl_grad_cos",
        "attn_grad_ratio",
        "attn_grad_cos",
        "attn_entropy_encoder_self",
        "attn_entropy_decoder_self",
        "attn_entropy_encoder_decoder",
        "attn_uniform_entropy_encoder_self",
        "attn_uniform_entropy_decoder_self",
        "attn_uniform_entropy_encoder_decoder",
        "attn_score_sd_encoder_self",
        "attn_score_sd_decoder_self",
        "attn_score_sd_encoder_decoder",
    ]
    print("| checkpoint | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for path in a.checkpoints:
        if not os.path.isfile(path):
            sys.exit(f"diagnose: no checkpoint {path}")
        model, cfg, task, update = load(path, a.data_bin)
        samples = batches(task, a.batches, a.max_tokens)
        row = {"checkpoint": path, "update": update, **layer_norm_gains(model), **diagnose(model, task, samples)}
        rows.append(row)
        print(
            f"| {os.path.relpath(path)} | "
            + " | ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols)
            + " |",
            flush=True,
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
