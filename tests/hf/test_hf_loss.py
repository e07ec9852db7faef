"""lrdrop_hf: the same loss as fairseq's lr_drop for Hugging Face models, checked by hand on tiny
models built from configs."""

import re

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from models import CAUSAL, CLASSIFIERS, SEQ2SEQ, batch, tiny  # noqa: E402
from transformers.trainer_pt_utils import LabelSmoother  # noqa: E402

from lrdrop import consistency as C  # noqa: E402
from lrdrop.options import LRDropConfigError  # noqa: E402
from lrdrop.records import AttentionInputs  # noqa: E402
from lrdrop_hf import LRDropArguments, LRDropLoss, lrdrop_loss  # noqa: E402
from lrdrop_hf.layout import FAMILIES  # noqa: E402
from lrdrop_hf.recording import Recorder  # noqa: E402

ALL = SEQ2SEQ + CLASSIFIERS + CAUSAL
TERMS = ("kl_loss", "hidden_loss", "attn_loss")


def full(**kw):
    return LRDropArguments(**{"kl_weight": 1.0, "hidden_weight": 1.0, "attn_weight": 1.0, **kw})


@pytest.mark.parametrize("kind", ALL)
def test_terms_are_zero_without_dropout_and_positive_with_it(kind):
    torch.manual_seed(0)
    for dropout, check in ((0.0, lambda v: v < 1e-9), (0.1, lambda v: v > 1e-6)):
        model = tiny(kind, dropout)
        model.train()
        _, logs = lrdrop_loss(model, batch(kind), full())
        assert all(check(float(logs[t])) for t in TERMS), (dropout, logs)
        assert all(torch.is_tensor(v) and not v.requires_grad for v in logs.values())  # no sync, no graph


@pytest.mark.parametrize("kind", ["bart", "t5", "bert"])
def test_with_the_layer_terms_off_it_is_rdrops_published_formula(kind):
    """CE(copy 1) + CE(copy 2) + alpha (KL(p1||p2) + KL(p2||p1)) / 2, sums over target tokens (HF's
    LabelSmoother per copy, R-Drop's kl_div form), divided by one copy's tokens; the same dropout
    masks (seed) for the reference's doubled forward."""
    model = tiny(kind, 0.1)
    model.train()
    b = batch(kind)
    args = LRDropArguments(kl_weight=3.0, hidden_weight=0.0, attn_weight=0.0)
    torch.manual_seed(5)
    loss, logs = lrdrop_loss(model, b, args, label_smoothing=0.1)
    inputs = {k: v for k, v in b.items() if k != "labels"}
    if kind in SEQ2SEQ:
        inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=b["labels"])
    torch.manual_seed(5)
    logits = model(**{k: torch.cat([v, v]) for k, v in inputs.items()}).logits
    l1, l2 = logits.chunk(2)
    pad = b["labels"].eq(-100)
    n = (~pad).sum()
    smoother = LabelSmoother(epsilon=0.1)
    ce = (smoother({"logits": l1}, b["labels"]) + smoother({"logits": l2}, b["labels"])) * n
    p, q = F.log_softmax(l1.float(), -1), F.log_softmax(l2.float(), -1)
    mask = pad.unsqueeze(-1)
    kl = (F.kl_div(p, q, log_target=True, reduction="none").masked_fill(mask, 0).sum()
          + F.kl_div(q, p, log_target=True, reduction="none").masked_fill(mask, 0).sum()) / 2  # fmt: skip
    torch.testing.assert_close(loss, (ce + 3.0 * kl) / n, rtol=1e-5, atol=1e-6)
    assert float(logs["kl_loss"]) == pytest.approx((kl / n).item(), rel=1e-5) and set(logs) == {
        "nll_loss",
        "ce_loss",
        "kl_loss",
    }
    # the NLL per token of one copy (the mean of the two), comparable with a single-pass model's
    token_dim = (lambda x: x.transpose(1, 2)) if kind in SEQ2SEQ else (lambda x: x)  # noqa: E731
    nll = sum(F.cross_entropy(token_dim(x.float()), b["labels"], ignore_index=-100, reduction="sum") for x in (l1, l2))
    assert float(logs["nll_loss"]) == pytest.approx((nll / 2 / n).item(), rel=1e-5)


def test_output_kl_by_hand():
    """Two copies' class distributions (.25, .75) and (.5, .5): symmetric KL / 2 = ln(3) / 8."""
    p, q = torch.tensor([[0.25, 0.75]]).log(), torch.tensor([[0.5, 0.5]]).log()
    assert C.symmetric_kl_from_log_probs(p, q).item() == pytest.approx(torch.log(torch.tensor(3.0)).item() / 8)


def _recorded(model, kind, b, args=None):
    """The core's records and pads of one doubled forward of ``model`` on ``b``, and its inputs."""
    loss = LRDropLoss(args or full())
    inputs = {k: v for k, v in b.items() if k != "labels"}
    seq2seq = FAMILIES[kind].kind == "seq2seq"
    if seq2seq:
        inputs["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=b["labels"])
    doubled = {k: torch.cat([v, v]) for k, v in inputs.items()}
    with Recorder(loss.layout(model), loss.record_spec) as rec:
        model(**doubled)
    records, pads = rec.records(b, b["labels"].eq(-100) if seq2seq else None)
    return records, pads, doubled


@pytest.mark.parametrize("padding", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", list(FAMILIES))
def test_recorded_maps_are_the_eager_models_own_attention(kind, implementation, padding):
    """Every family in the table, run by eager or by SDPA (whose masks differ: float added, bool, or
    none where only causality remains): the maps read through the attention interface equal the
    eager implementation's own returned weights at dropout 0 (its pre-dropout probabilities), in
    every layer and type: scaling, T5's position bias, rotary positions, grouped key/value heads,
    padding, the causal mask and Mistral's sliding window (3 tokens) included."""
    torch.manual_seed(0)
    model = tiny(kind, 0.0, attn_implementation="eager")
    model.train()
    b = batch(kind)
    if not padding:
        b = {k: v[:1] for k, v in b.items()}  # sentence 0 has no padding: SDPA gets no mask, or a causal one
    model.set_attn_implementation(implementation)
    records, pads, doubled = _recorded(model, kind, b)
    model.set_attn_implementation("eager")
    out = model(**doubled, output_attentions=True)
    family = FAMILIES[kind].kind
    theirs = {"seq2seq": lambda: {"encoder_self": out.encoder_attentions, "decoder_self": out.decoder_attentions,
                                  "encoder_decoder": out.cross_attentions},
              "encoder": lambda: {"encoder_self": out.attentions},
              "causal": lambda: {"decoder_self": out.attentions}}[family]()  # fmt: skip
    assert set(records["attn"]) == set(theirs)
    for t, maps in records["attn"].items():
        assert len(maps) == len(theirs[t]) == 2
        for ours, ref in zip(maps, theirs[t]):
            real_q = (~pads["encoder" if t == "encoder_self" else "decoder"]).repeat(2, 1)  # rows that count
            ours, ref = ours.permute(1, 2, 0, 3), ref.float().transpose(1, 2)  # both (2B, Tq, H, Tk)
            torch.testing.assert_close(ours[real_q], ref[real_q], rtol=1e-5, atol=1e-6)


def test_the_attention_interface_is_restored_and_other_modules_pass_through():
    """Outside a recording the interface's table is as it was; inside it, a module the spec does not
    select (--consistency_layers -1: layer 0) runs the chosen kernel unrecorded."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    before = dict(ALL_ATTENTION_FUNCTIONS._local_mapping)
    model = tiny("llama", 0.1)
    model.train()
    records, _, _ = _recorded(model, "llama", batch("llama"), full(consistency_layers="-1"))
    assert len(records["attn"]["decoder_self"]) == 1
    assert ALL_ATTENTION_FUNCTIONS._local_mapping == before


def test_a_flash_kernels_padding_and_sliding_window_give_sdpas_mask(monkeypatch):
    """A flash kernel gets a (B, Tk) padding mask (or none) and the ``sliding_window`` keyword, and
    keeps causality by the module's ``is_causal``: the mask rebuilt from them is the 4-D one SDPA
    gets for the same Mistral batch."""
    from lrdrop_hf import recording

    model = tiny("mistral", 0.0, attn_implementation="sdpa")
    model.train()
    b = batch("mistral")
    seen = []
    real = recording._score_mask

    def spy(module, query, key, mask, kwargs, impl):
        seen.append((module, query, key, mask, kwargs))
        return real(module, query, key, mask, kwargs, impl)

    monkeypatch.setattr(recording, "_score_mask", spy)
    _recorded(model, "mistral", b)
    module, query, key, sdpa_mask, kwargs = seen[0]
    assert sdpa_mask.dtype == torch.bool and sdpa_mask.dim() == 4 and kwargs["sliding_window"] == 3
    flash = real(module, query, key, torch.cat([b["attention_mask"]] * 2), kwargs, "flash_attention_2")
    real_q = torch.cat([b["attention_mask"]] * 2).bool()  # padded queries' rows differ (and never count)
    assert torch.equal(flash.expand_as(sdpa_mask)[:, 0][real_q], (~sdpa_mask)[:, 0][real_q])


@pytest.mark.parametrize("in_backward", [False, True], ids=["gradient-in-forward", "maps-again-in-backward"])
@pytest.mark.parametrize("kind", ALL)
def test_the_recompute_path_gives_the_map_paths_loss_and_gradients(kind, in_backward):
    """--attn_small_map 0 hands every attention module to the core's recompute path (the projected
    queries and keys; T5's position bias and the model's masks included), with or without
    --attn_recompute_in_backward: the same loss and the same gradient for every parameter as the
    maps built from the projections' outputs."""
    model = tiny(kind, 0.1)
    model.train()
    b = batch(kind)
    results = {}
    for small_map in (2**40, 0):
        args = full(attn_small_map=small_map, attn_recompute_in_backward=in_backward)
        torch.manual_seed(7)
        loss, logs = lrdrop_loss(model, b, args)
        model.zero_grad()
        loss.backward()
        results[small_map] = (
            loss.detach(),
            float(logs["attn_loss"]),
            {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
        )
    (l_maps, a_maps, g_maps), (l_rec, a_rec, g_rec) = results[2**40], results[0]
    assert a_maps > 1e-6
    assert a_rec == pytest.approx(a_maps, rel=1e-5)
    torch.testing.assert_close(l_rec, l_maps, rtol=1e-6, atol=1e-7)
    assert g_rec.keys() == g_maps.keys()
    for name in g_maps:
        torch.testing.assert_close(g_rec[name], g_maps[name], rtol=1e-4, atol=1e-7, msg=name)
    # and it did take the recompute path: records of the projected queries and keys, not maps
    records, _, _ = _recorded(model, kind, b, full(attn_small_map=0))
    kept = [r for recs in records["attn"].values() for r in recs]
    assert kept and all(isinstance(r, AttentionInputs) and r.maps is None and r.q_weight is None for r in kept)


@pytest.mark.parametrize("kind", ["marian", "t5", "bert"])
def test_maps_again_in_backward_keep_the_attention_term_at_rdrops_memory(kind):
    """What the autograd graph holds for the backward (exact, storage by storage): KL + attention
    with every map recomputed in the backward holds what R-Drop's graph holds and at most the
    queries and keys the attention interface got (a kernel that keeps them itself, as the fused
    SDPA and flash kernels do, shares them; SDPA's math path on CPU keeps its own copies); with
    the maps kept, more."""
    from lrdrop_cli.measure.benchmark import saved_for_backward_mb

    model = tiny(kind, 0.1)
    model.train()
    b = batch(kind)
    params = list(model.parameters())
    mb = {}
    for name, args in (
        ("rdrop", full(hidden_weight=0.0, attn_weight=0.0)),
        ("maps", full(hidden_weight=0.0)),
        ("in_backward", full(hidden_weight=0.0, attn_small_map=0, attn_recompute_in_backward=True)),
    ):
        loss_fn = LRDropLoss(args)
        mb[name] = saved_for_backward_mb(lambda: loss_fn(model, b)[0], exclude=params)  # noqa: B023
    records, _, _ = _recorded(model, kind, b, full(hidden_weight=0.0, attn_small_map=0))
    qk = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
          for recs in records["attn"].values() for r in recs for t in (r.query, r.key)}  # fmt: skip
    qk_mb = sum(qk.values()) / 2**20
    # (a few scalars of the term's own arithmetic aside: < 1 KB; the maps are tens of KB here)
    assert mb["rdrop"] - 1e-3 < mb["in_backward"] < mb["rdrop"] + qk_mb + 1e-3, (mb, qk_mb)
    assert mb["maps"] > mb["rdrop"] + 1e-2, mb


@pytest.mark.parametrize("kind", ["bart", "t5", "bert", "llama"])
def test_padded_positions_change_nothing(kind):
    """What stands at padded source positions (attention_mask 0) and at -100 target positions
    cannot change any term: padding comes from attention_mask and from labels == -100."""
    model = tiny(kind, 0.1)
    model.train()
    b = batch(kind)
    other = {k: v.clone() for k, v in b.items()}
    other["input_ids"][b["attention_mask"] == 0] = 7  # a real token where the mask says pad
    logs = []
    for x in (b, other):
        torch.manual_seed(3)
        logs.append(lrdrop_loss(model, x, full())[1])
    for t in TERMS:
        assert float(logs[0][t]) == pytest.approx(float(logs[1][t]), rel=1e-5), t


@pytest.mark.parametrize("small_map", [1 << 30, 0], ids=["maps_kept", "recomputed"])
def test_a_decoder_attention_mask_masks_decoder_self_attention_keys(small_map, layer_terms_calls):
    """decoder_attention_mask: right padding (the labels' own) changes nothing, a causal query sees
    no pad anyway; left padding masks those keys in the term's maps too, and a query whose keys
    are all masked gets a uniform row, not NaN (finite masks, as the model's own)."""
    model = tiny("bart", 0.1)
    model.train()
    b = batch("bart")
    b["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=b["labels"])
    args = full(attn_small_map=small_map)
    right = torch.cat([torch.ones_like(b["labels"][:, :1]), (b["labels"][:, :-1] != -100).long()], 1)
    left = right.clone()
    left[0, :2] = 0  # sentence 0: decoder positions 0 and 1 are pads
    losses = []
    for mask in (None, right, left):
        torch.manual_seed(3)
        extra = {} if mask is None else {"decoder_attention_mask": mask}
        losses.append(lrdrop_loss(model, {**b, **extra}, args)[0])
    torch.testing.assert_close(losses[1], losses[0])
    assert torch.isfinite(losses[2])
    rec = layer_terms_calls[2]["records"]["attn"]["decoder_self"][0]
    probs = rec if torch.is_tensor(rec) else rec.probs()  # (H, 2B, Tq, Tk)
    assert torch.isfinite(probs).all()
    for row in (0, 3):  # sentence 0 in both copies
        assert probs[:, row, 2:, :2].abs().max() == 0  # later queries give the pads nothing
        # queries 0 and 1 see only pads: every key masked, a uniform row over all keys
        torch.testing.assert_close(probs[:, row, :2], torch.full_like(probs[:, row, :2], 1 / probs.shape[-1]))


@pytest.mark.parametrize("kind", ["bart", "t5", "bert"])
@pytest.mark.parametrize("site", ["ffn", "layer"])
def test_the_hidden_term_reads_the_site_it_names(kind, site, layer_terms_calls):
    """--hidden_site ffn: the FFN sublayer's output (the paper's HS(x): BART's fc2, T5's DenseReluDense,
    BERT's output.dense); layer: the layer's output. The core gets them time-major, every layer."""
    from lrdrop_hf.layout import layout_of

    model = tiny(kind, 0.1)
    model.train()
    layout = layout_of(model)
    want = {"encoder": [], "decoder": []}
    for side, layers in (("encoder", layout.encoder_layers), ("decoder", layout.decoder_layers)):
        for layer in layers or []:
            module = layout.ffn(layer) if site == "ffn" else layer
            module.register_forward_hook(
                lambda _m, _i, out, keep=want[side]: keep.append(out[0] if isinstance(out, tuple) else out)
            )
    lrdrop_loss(
        model, batch(kind), LRDropArguments(kl_weight=0.0, hidden_weight=1.0, attn_weight=0.0, hidden_site=site)
    )
    for side in want:
        got = layer_terms_calls[0]["records"][f"{side}_states"]
        assert len(got) == len(want[side])
        for g, w in zip(got, want[side]):
            assert torch.equal(g, w.transpose(0, 1))


def test_the_batch_and_the_model_are_left_as_they_were():
    model = tiny("bart", 0.1)
    model.train()
    b = batch("bart")
    before = {k: v.clone() for k, v in b.items()}
    lrdrop_loss(model, b, full())
    assert b.keys() == before.keys() and all(torch.equal(b[k], before[k]) for k in b)
    assert not any(m._forward_hooks for m in model.modules())  # the recorder's hooks are gone
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    assert "sdpa" not in ALL_ATTENTION_FUNCTIONS._local_mapping  # and the attention interface is the library's


def test_gradients_match_finite_differences():
    """float64, the same dropout masks at every evaluation (seeded): d loss / d theta by autograd
    against central differences, for entries of an attention projection, an FFN and the embeddings."""
    model = tiny("bart", 0.1).double()
    model.train()
    b = batch("bart")
    loss_fn = LRDropLoss(full(hidden_weight=3.0, attn_weight=3.0))

    def loss():
        torch.manual_seed(9)
        return loss_fn(model, b)[0]

    params = [model.model.encoder.layers[0].self_attn.q_proj.weight, model.model.decoder.layers[1].fc2.weight,
              model.model.shared.weight]  # fmt: skip
    grads = torch.autograd.grad(loss(), params)
    for p, g in zip(params, grads):
        for idx in [(0, 0), (3, 5)]:
            with torch.no_grad():
                old = p[idx].item()
                p[idx] = old + 1e-6
                up = loss().item()
                p[idx] = old - 1e-6
                down = loss().item()
                p[idx] = old
            assert g[idx].item() == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-8)


def test_regression_head_compares_its_two_predictions():
    model = tiny("bert", 0.1, num_labels=1)
    model.train()
    b = batch("bert")
    b["labels"] = torch.tensor([0.5, 1.0, -0.2])
    torch.manual_seed(1)
    loss, logs = lrdrop_loss(model, b, LRDropArguments(kl_weight=0.5, hidden_weight=0.0, attn_weight=0.0))
    torch.manual_seed(1)
    preds = model(**{k: torch.cat([v, v]) for k, v in b.items() if k != "labels"}).logits.view(-1)
    mse = ((preds - torch.cat([b["labels"]] * 2)) ** 2).sum()
    diff = ((preds[:3] - preds[3:]) ** 2).sum()
    torch.testing.assert_close(loss, (mse + 0.5 * diff) / 3)
    assert float(logs["prediction_mse_loss"]) == pytest.approx(diff.item() / 3, rel=1e-5)


def test_heads_whose_loss_it_would_get_wrong_are_refused():
    # R-Drop alone reads any model, but a token classifier counts its tokens otherwise and a
    # multi-label head takes a sigmoid cross-entropy: the loss here would be silently wrong (causal
    # language models shift their labels, as the loss now does: tests/hf/test_hf_defects.py)
    T = __import__("transformers")
    tagger = T.BertForTokenClassification(T.BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1,
                                                       num_attention_heads=2, intermediate_size=32))  # fmt: skip
    ids = batch("bert")["input_ids"]
    rdrop = LRDropArguments(hidden_weight=0.0, attn_weight=0.0)
    with pytest.raises(LRDropConfigError, match=r"BertForTokenClassification returns logits of shape \(batch, 6, 2\)"):
        lrdrop_loss(tagger, {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}, rdrop)
    b = batch("bert")
    b["labels"] = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(LRDropConfigError, match="problem_type 'multi_label_classification'"):
        lrdrop_loss(tiny("bert"), b, rdrop)
    # the same float labels with problem_type='regression' (three outputs): MSE, as the model's own loss
    model = tiny("bert", 0.0, problem_type="regression")
    loss, _ = lrdrop_loss(model, b, LRDropArguments(kl_weight=0.0, hidden_weight=0.0, attn_weight=0.0))
    own = model(**b).loss  # mean over the 9 outputs; ours sums both copies over the 9 outputs, / 9
    torch.testing.assert_close(loss, own * 2)


@pytest.mark.parametrize("kind", ["bart", "bert", "bert_regression"])
def test_a_weight_0_output_term_is_neither_computed_nor_logged(kind):
    model = tiny("bert", 0.1, num_labels=1) if kind == "bert_regression" else tiny(kind, 0.1)
    b = batch("bert" if kind == "bert_regression" else kind)
    if kind == "bert_regression":
        b["labels"] = torch.tensor([0.5, 1.0, -0.2])
    model.train()
    _, logs = lrdrop_loss(model, b, LRDropArguments(kl_weight=0.0, hidden_weight=0.0, attn_weight=0.0))
    assert set(logs) == {"nll_loss", "ce_loss"}, logs


def test_clear_errors():
    with pytest.raises(LRDropConfigError, match="no 'attention_mask': the layer terms need the padding"):
        lrdrop_loss(tiny("gpt2"), {k: v for k, v in batch("gpt2").items() if k != "attention_mask"}, full())
    paged = tiny("llama")
    paged.config._attn_implementation = "paged|sdpa"  # generation's paged cache: no per-sentence masks
    refused = re.escape("runs 'paged|sdpa'. Load it with attn_implementation='sdpa'")
    with pytest.raises(LRDropConfigError, match=refused):
        lrdrop_loss(paged, batch("llama"), full())
    with pytest.raises(LRDropConfigError, match="--hidden-site 'fc2'"):
        LRDropLoss(full(hidden_site="fc2"))
    with pytest.raises(LRDropConfigError, match="--attn-types names decoder_self"):
        lrdrop_loss(tiny("bert"), batch("bert"), full(attn_types="decoder_self"))
    with pytest.raises(LRDropConfigError, match="no 'labels'"):
        lrdrop_loss(tiny("bart"), {"input_ids": torch.ones(1, 3, dtype=torch.long)}, full())
    with pytest.raises(LRDropConfigError, match="--attn-recompute-in-backward takes true or false, got 'yes'"):
        LRDropLoss(full(attn_recompute_in_backward="yes"))


def test_the_resolved_weights_are_logged_once_with_the_models_attention(caplog):
    model = tiny("bert")
    model.train()
    loss = LRDropLoss(LRDropArguments(kl_weight=1.0))
    with caplog.at_level("INFO", logger="lrdrop_hf.loss"):
        loss(model, batch("bert"))
        loss(model, batch("bert"))
    lines = [r.getMessage() for r in caplog.records if "consistency terms" in r.getMessage()]
    assert lines == [
        "LRDropLoss: consistency terms: --kl-weight 1; --hidden-weight 0.1 (mse at --hidden-site ffn); "
        "--attn-weight 0.1 (kl over encoder_self); layers all (mean over layers)"
    ]
    caplog.clear()
    rdrop = LRDropLoss(LRDropArguments(kl_weight=1.0, hidden_weight=0.0, attn_weight=0.0))
    with caplog.at_level("INFO", logger="lrdrop_hf.loss"):
        rdrop(model, batch("bert"))
        rdrop(model, batch("bert"))
    lines = [r.getMessage() for r in caplog.records if "consistency terms" in r.getMessage()]
    assert lines == ["LRDropLoss: consistency terms: --kl-weight 1; --hidden-weight 0 (off); --attn-weight 0 (off)"]


def test_hf_argument_parser_reads_the_same_flags():
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(LRDropArguments).parse_args_into_dataclasses(
        ["--kl_weight", "0.7", "--hidden_weight", "0.1", "--hidden_site", "layer", "--consistency_layers", "last"]
    )
    assert (args.kl_weight, args.hidden_weight, args.hidden_site, args.consistency_layers) == (
        0.7,
        0.1,
        "layer",
        "last",
    )
    assert LRDropLoss(args).record_spec.layers == (-1,)
    (args,) = HfArgumentParser(LRDropArguments).parse_args_into_dataclasses(
        ["--attn_small_map", "0", "--attn_map_block", "4096", "--attn_recompute_in_backward"]
    )
    loss = LRDropLoss(args)
    assert (loss.record_spec.small_map, loss.map_block, loss.recompute_in_backward) == (0, 4096, True)
    assert LRDropLoss(LRDropArguments()).recompute_in_backward is False
    # --hidden_weight not given: by the site, as fairseq's lr_drop (0.1 at ffn, 1 at layer)
    for flags, weight in (([], 0.1), (["--hidden_site", "layer"], 1.0)):
        (args,) = HfArgumentParser(LRDropArguments).parse_args_into_dataclasses(flags)
        assert args.hidden_weight is None and LRDropLoss(args).hidden_weight == weight
    from lrdrop.options import DEFAULTS

    assert set(DEFAULTS) <= set(LRDropArguments.__dataclass_fields__)  # every core option has its HF flag


def test_every_default_is_fairseqs_lr_drop_default():
    """LRDropArguments(), fairseq's LRDropConfig() and LRDropCriterion's keyword defaults agree on
    every option they share; the output KL's weight, not given, goes by the head as fairseq's criteria
    (tests/hf/test_hf_defects.py): lr_drop's R-Drop alpha 5 for a token head."""
    import dataclasses
    import inspect

    from lrdrop_fairseq.criterions.lr_drop import LRDropConfig, LRDropCriterion

    hf, fs = dataclasses.asdict(LRDropArguments()), dataclasses.asdict(LRDropConfig())
    init = {k: p.default for k, p in inspect.signature(LRDropCriterion.__init__).parameters.items()}
    shared = set(hf) & set(fs) - {"kl_weight"}
    assert shared >= {"hidden_weight", "attn_weight", "hidden_site", "attn_small_map"}
    for name in shared:
        assert hf[name] == fs[name] == init[name], name
    assert hf["kl_weight"] is None and fs["kl_weight"] == init["kl_weight"] == 5.0


@pytest.mark.parametrize("hidden_loss, attn_loss", [("mse", "kl"), ("rel_mse", "corr"), ("cosine", "mse"),
                                                     ("rel_var", "corr")])  # fmt: skip
@pytest.mark.parametrize("causal", [False, True])
def test_the_core_gives_the_same_terms_for_fairseqs_and_hfs_layouts(causal, hidden_loss, attn_loss):
    """The same tensors laid out as fairseq records them (time-first inputs of the projections,
    AttentionInputs) and as the HF adapter does (what the attention interface gets): the same
    attention maps, and the same hidden and attention terms and health figures from the core,
    for every distance."""
    from lrdrop_hf.recording import _attention_inputs, _probs

    g = torch.Generator().manual_seed(0)
    b2, t, c, heads = 4, 5, 8, 2
    x = torch.randn(b2, t, c, generator=g)  # HF: (2B, T, C)
    q_proj, k_proj = torch.nn.Linear(c, c), torch.nn.Linear(c, c)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])  # one copy, (B, T)
    key_pad = torch.cat([pad, pad])
    scaling = (c // heads) ** -0.5
    upper = torch.ones(t, t, dtype=torch.bool).triu(1) if causal else None
    # what the attention interface gets: (2B, H, T, d) queries and keys, the model's 4-D mask (True = masked)
    model_mask = key_pad[:, None, None, :] | (upper if causal else False)
    heads_first = lambda y: y.view(b2, t, heads, -1).transpose(1, 2)  # noqa: E731
    rec = {"q": heads_first(q_proj(x)), "k": heads_first(k_proj(x)), "scaling": scaling, "bias": None,
           "mask": model_mask}  # fmt: skip
    hf_maps = _probs(rec)
    fairseq = AttentionInputs(
        query=x.transpose(0, 1), key=x.transpose(0, 1), q_weight=q_proj.weight, q_bias=q_proj.bias,
        k_weight=k_proj.weight, k_bias=k_proj.bias, num_heads=heads, scaling=scaling, key_padding_mask=key_pad,
        attn_mask=upper,
    )  # fmt: skip
    # the recompute path's record: the projected queries and keys, the model's mask
    torch.testing.assert_close(_attention_inputs(rec).probs(), fairseq.probs(), rtol=1e-5, atol=1e-6)
    real = (~key_pad)[None, :, :, None]  # padded query rows differ (a fully masked row) and never count
    torch.testing.assert_close((hf_maps * real), (fairseq.probs() * real), rtol=1e-5, atol=1e-6)
    side = "decoder" if causal else "encoder"
    attn_type = "decoder_self" if causal else "encoder_self"
    units = torch.tensor([3.0, 2.0])
    states = torch.randn(b2, t, c, generator=g)
    hf_stats, fs_stats = {}, {}
    hf = C.layer_terms({f"{side}_states": [states.transpose(0, 1)], "attn": {attn_type: [hf_maps]}}, {side: pad}, units,
                       hidden_loss, attn_loss, stats=hf_stats)  # fmt: skip
    fs = C.layer_terms({f"{side}_states": [states.transpose(0, 1).contiguous()], "attn": {attn_type: [fairseq]}},
                       {side: pad}, units, hidden_loss, attn_loss, stats=fs_stats)  # fmt: skip
    for term in ("hidden_loss", "attn_loss"):
        torch.testing.assert_close(hf[term], fs[term], rtol=1e-5, atol=1e-7)
        assert fs[term].item() > 0
    assert set(hf_stats) == set(fs_stats) == {f"attn_sd_{attn_type}", "hidden_rms"}
    for name in hf_stats:
        torch.testing.assert_close(hf_stats[name], fs_stats[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["bart", "bert"])
def test_logs_each_types_score_sd_and_the_ffn_rms(kind):
    """Beside the terms, the health figures of the first copy: the attention the model has, and the
    FFN output's RMS (the hidden site)."""
    model = tiny(kind, 0.1)
    model.train()
    _, logs = lrdrop_loss(model, batch(kind), full())
    types = ["encoder_self"] + (["decoder_self", "encoder_decoder"] if kind in SEQ2SEQ else [])
    assert sorted(k for k in logs if k.startswith("attn_sd_")) == sorted(f"attn_sd_{t}" for t in types)
    assert all(float(logs[f"attn_sd_{t}"]) > 0 for t in types) and float(logs["ffn_rms"]) > 0


def test_zeroed_queries_warn_once_after_the_ramp(caplog):
    """Every query projection zeroed: uniform rows, score sd 0: the warning after the ramp, once."""
    from lrdrop.health import CHECK_AFTER
    from lrdrop_hf.loss import LRDropLoss

    model = tiny("bart", 0.1)
    for name, m in model.named_modules():
        if name.endswith("q_proj"):
            torch.nn.init.zeros_(m.weight)
            torch.nn.init.zeros_(m.bias)
    model.train()
    loss = LRDropLoss(full(attn_loss="corr"))
    with caplog.at_level("WARNING"):
        _, logs, _ = loss(model, batch("bart"), num_updates=CHECK_AFTER - 1)
        assert float(logs["attn_sd_encoder_decoder"]) == 0 and "flat attention" not in caplog.text
        loss(model, batch("bart"), num_updates=CHECK_AFTER)
        loss(model, batch("bart"), num_updates=5 * CHECK_AFTER)
    assert caplog.text.count("flat attention") == 1 and "encoder_decoder 0.000" in caplog.text
