"""lr_drop_sentence_prediction: hand-computed values, wiring on RoBERTa and BART, bad flags,
the official-checkpoint restore, export, and real fairseq-train / fairseq-validate runs."""

import argparse
import json
import math
import os

import pytest
import torch
from conftest import ROOT, run, tool
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.modules.fairseq_dropout import FairseqDropout
from fairseq.trainer import Trainer
from helpers import build_sentence, first_batch, hooked_forward, masked_mse_sum, sentence_args

from lrdrop_fairseq.guards import LRDropConfigError

HEAD = {"features_only": True, "classification_head_name": "sentence_classification_head"}
REGRESSION = ["--regression-target", "--num-classes", "1"]


class StubModel(torch.nn.Module):
    """Returns fixed head outputs and records for the doubled batch: the criterion's arithmetic
    can then be checked against numbers worked out by hand."""

    supports_lrdrop_records = True
    lrdrop_attn_types = ("encoder_self",)

    def __init__(self, logits, records):
        super().__init__()
        self.logits, self.records = logits, records
        self.dropout = FairseqDropout(0.1)  # the criterion warns when every dropout is 0

    def lrdrop_attention_modules(self, spec):
        return {}

    def get_targets(self, sample, net_output):
        return sample["target"]

    def forward(self, src_tokens, src_lengths=None, lrdrop_record=None, **head):
        assert src_tokens.size(0) == self.logits.size(0) and head == HEAD  # the doubled batch
        return self.logits, ({"lrdrop": self.records} if lrdrop_record is not None else {})


def _stub_sample(target):
    tokens = torch.tensor([[0, 5, 2], [0, 2, 1]])  # pad (1) at the second sentence's last position
    return {"net_input": {"src_tokens": tokens, "src_lengths": torch.tensor([3, 2])}, "target": target, "ntokens": 5}


def test_classification_terms_by_hand_with_padding(toy_sentences):
    task, _, crit = build_sentence(
        toy_sentences["classification"],
        extra=["--kl-weight", "2", "--hidden-weight", "3", "--attn-weight", "4", "--attn-loss", "mse"],
    )
    ln3 = math.log(3)
    logits = torch.tensor([[0.0, ln3], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # copy 1: (.25, .75), (.5, .5)
    pad = torch.tensor([[False, False, False], [False, False, True]])
    h = torch.zeros(3, 4, 2)  # (T, 2B, C); copy 1 is all zeros
    h[0, 2] = torch.tensor([1.0, 1.0])  # sentence 1, token 0: mean square 1
    h[1, 2] = torch.tensor([2.0, 0.0])  # sentence 1, token 1: 2
    h[0, 3] = torch.tensor([0.0, 2.0])  # sentence 2, token 0: 2
    h[2, 3] = torch.tensor([10.0, 10.0])  # sentence 2's pad token: 100, must not count
    a = torch.zeros(1, 4, 3, 3)  # (H, 2B, Tq, Tk)
    a[..., 0] = 1.0
    a[0, 2, 0] = torch.tensor([0.0, 1.0, 0.0])  # sentence 1, query 0: squared difference 2
    a[0, 3, 2] = torch.tensor([0.0, 1.0, 0.0])  # sentence 2's pad query: 2, must not count
    records = {"encoder_padding_mask": torch.cat([pad, pad]), "encoder_states": [h], "attn": {"encoder_self": [a]}}
    model = StubModel(logits, records)
    model.train()
    loss, sample_size, log = crit(model, _stub_sample(torch.tensor([1, 0])))

    task_loss = math.log(4 / 3) + 3 * math.log(2)  # -ln .75 - ln .5 (copy 1), -2 ln .5 (copy 2)
    kl = 0.125 * ln3  # sentence 1: (KL(p||q) + KL(q||p)) / 2 for p = (.25, .75), q = (.5, .5)
    hidden, attn = 5.0, 2.0  # token sums over the 5 real tokens
    assert sample_size == 2
    assert log["kl_loss"].item() == pytest.approx(kl, rel=1e-6)
    assert log["hidden_loss"].item() == pytest.approx(hidden, rel=1e-6)
    assert log["attn_loss"].item() == pytest.approx(attn, rel=1e-6)
    assert log["loss"].item() == pytest.approx(task_loss / 2, rel=1e-6)
    assert log["ncorrect"] == 1.5  # copy 1 gets both, copy 2 (a tie -> class 0) only the second
    # layer terms enter as per-token means: x sample_size / tokens = 2 / 5
    expected = task_loss + 2 * kl + (3 * hidden + 4 * attn) * 2 / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert log["objective"].item() == pytest.approx(expected, rel=1e-6)


def test_regression_terms_by_hand(toy_sentences):
    task, _, crit = build_sentence(
        toy_sentences["regression"],
        extra=[*REGRESSION, "--prediction-mse-weight", "2", "--hidden-weight", "0", "--attn-weight", "0"],
    )
    preds = torch.tensor([[1.0], [2.0], [1.5], [2.0]])  # copy 1, then copy 2
    model = StubModel(preds, {})
    model.train()
    loss, sample_size, log = crit(model, _stub_sample(torch.tensor([[1.0], [3.0]])))
    # MSE: copy 1 0 + 1, copy 2 .25 + 1; the two predictions differ by .5 on sentence 1
    assert sample_size == 2
    assert log["prediction_mse_loss"].item() == pytest.approx(0.25)
    assert "kl_loss" not in log and "ncorrect" not in log
    assert loss.item() == pytest.approx(2.25 + 2 * 0.25)


def test_defaults_compare_outputs_and_attention(toy_sentences):
    _, _, crit = build_sentence(toy_sentences["classification"])
    assert crit.full_weights() == {"kl_loss": 1.0, "hidden_loss": 0.0, "attn_loss": 1.0}
    _, _, reg = build_sentence(toy_sentences["regression"], extra=REGRESSION)
    assert reg.full_weights() == {"prediction_mse_loss": 1.0, "hidden_loss": 0.0, "attn_loss": 1.0}


@pytest.mark.parametrize("site", ["layer", "ffn"])
def test_roberta_wiring_hidden_states_and_padding(toy_sentences, site):
    task, model, crit = build_sentence(
        toy_sentences["classification"],
        extra=["--kl-weight", "0", "--attn-weight", "0", "--hidden-weight", "1", "--hidden-site", site],
    )
    sample = first_batch(task)
    pad = sample["net_input"]["src_tokens"].eq(task.source_dictionary.pad())
    assert pad.any()
    model.train()
    torch.manual_seed(7)
    _, _, log = crit(model, sample)
    layers = model.encoder.sentence_encoder.layers
    hooked = list(layers) if site == "layer" else [layer.fc2 for layer in layers]
    states, _ = hooked_forward(crit, model, sample, {"enc": hooked}, **HEAD)
    assert len(states["enc"]) == 2
    sums = [masked_mse_sum(h, pad.t()) for h in states["enc"]]
    expected = torch.stack([s[0] for s in sums]).mean()
    torch.testing.assert_close(log["hidden_loss"], expected, rtol=1e-5, atol=1e-7)
    assert (torch.stack([s[1] for s in sums]).mean() - expected).abs() > 1e-3 * expected


def test_roberta_wiring_self_attention_ignores_padded_queries(toy_sentences):
    task, model, crit = build_sentence(toy_sentences["classification"], extra=["--kl-weight", "0"])
    sample = first_batch(task)
    pad = sample["net_input"]["src_tokens"].eq(task.source_dictionary.pad())
    model.train()
    torch.manual_seed(7)
    _, _, log = crit(model, sample)
    _, (_, extra) = hooked_forward(crit, model, sample, {}, **HEAD)
    assert list(extra["lrdrop"]["attn"]) == ["encoder_self"]
    per_layer, unmasked = [], []
    for r in extra["lrdrop"]["attn"]["encoder_self"]:
        p, q = r.probs().chunk(2, dim=1)
        per_query = (0.5 * ((p - q) * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(-1)).mean(0)
        per_layer.append(per_query.masked_fill(pad, 0.0).sum())
        unmasked.append(per_query.sum())
    expected = torch.stack(per_layer).mean()
    torch.testing.assert_close(log["attn_loss"], expected, rtol=1e-4, atol=1e-7)
    assert (torch.stack(unmasked).mean() - expected).abs() > 1e-3 * expected


def test_bart_classification_head_wiring(toy_sentences):
    """BART reads the input twice: the encoder's padding masks its states, the padding of
    prev_output_tokens (the input rolled by one, so the same positions) the decoder's."""
    task, model, crit = build_sentence(
        toy_sentences["classification"],
        arch="bart_lrdrop_base",
        extra=["--add-prev-output-tokens", "--kl-weight", "0", "--attn-weight", "0", "--hidden-weight", "1"],
    )
    sample = first_batch(task)
    src_pad = sample["net_input"]["src_tokens"].eq(task.source_dictionary.pad())
    dec_pad = sample["net_input"]["prev_output_tokens"].eq(task.source_dictionary.pad())
    assert src_pad.any() and dec_pad.any()
    model.train()
    torch.manual_seed(7)
    _, _, log = crit(model, sample)
    states, _ = hooked_forward(
        crit, model, sample, {"enc": list(model.encoder.layers), "dec": list(model.decoder.layers)}, **HEAD
    )
    sums = [masked_mse_sum(h, src_pad.t()) for h in states["enc"]]
    sums += [masked_mse_sum(h, dec_pad.t()) for h in states["dec"]]
    expected = torch.stack([s[0] for s in sums]).mean()
    torch.testing.assert_close(log["hidden_loss"], expected, rtol=1e-5, atol=1e-7)
    decoder_unmasked = torch.stack([s[0] for s in sums[:2]] + [s[1] for s in sums[2:]]).mean()
    assert (decoder_unmasked - expected).abs() > 1e-3 * expected


@pytest.mark.parametrize(
    "data, arch, criterion, extra, message",
    [
        ("regression", "roberta_lrdrop", None, [*REGRESSION, "--kl-weight", "1"], "--prediction-mse-weight"),
        ("classification", "roberta_lrdrop", None, ["--prediction-mse-weight", "1"], "--kl-weight"),
        ("classification", "roberta_lrdrop", None, ["--hidden-weight", "-1"], "--hidden-weight must be >= 0"),
    ],
)
def test_bad_flags_are_refused_at_build(toy_sentences, data, arch, criterion, extra, message):
    with pytest.raises(LRDropConfigError, match=message.replace("-", r"\-")):
        build_sentence(
            toy_sentences[data], arch=arch, criterion=criterion or "lr_drop_sentence_prediction", extra=extra
        )


@pytest.mark.parametrize(
    "arch, extra, message",
    [
        ("roberta_lrdrop", ["--attn-types", "decoder_self"], "encoder-only"),
        ("roberta_lrdrop", ["--attn-types", "encoder_self,encoder_decoder"], "encoder-only"),
        ("roberta", [], "roberta_lrdrop_base"),
    ],
)
def test_terms_the_model_cannot_record_are_refused_at_the_first_step(toy_sentences, arch, extra, message):
    task, model, crit = build_sentence(toy_sentences["classification"], arch=arch, extra=extra)
    model.train()
    with pytest.raises(LRDropConfigError, match=message):
        crit(model, first_batch(task))


def test_plain_roberta_trains_with_output_consistency_only(toy_sentences):
    task, model, crit = build_sentence(toy_sentences["classification"], arch="roberta", extra=["--attn-weight", "0"])
    model.train()
    loss, _, log = crit(model, first_batch(task))
    assert log["kl_loss"].item() > 0 and "attn_loss" not in log
    loss.backward()


def _random_official_roberta(data, path):
    """A random roberta-shaped checkpoint laid out like the official roberta.base/model.pt:
    the masked-LM model's state (LM head, no classification head) with an argparse config."""
    args = options.parse_args_and_arch(
        options.get_training_parser(), input_args=sentence_args(data, arch="roberta", criterion="sentence_prediction")
    )
    cfg = convert_namespace_to_omegaconf(args)
    torch.manual_seed(0)
    plain = tasks.setup_task(cfg.task).build_model(cfg.model)
    state = plain.state_dict()
    official = {k: v for k, v in state.items() if "classification_heads" not in k}
    assert any(k.startswith("encoder.lm_head.") for k in official)
    history = [
        {
            "criterion_name": "MaskedLmLoss",
            "optimizer_name": "FairseqAdam",
            "lr_scheduler_state": {"best": None},
            "num_updates": 500000,
        }
    ]
    torch.save(
        {
            "args": argparse.Namespace(**{**vars(args), "task": "masked_lm", "criterion": "masked_lm"}),
            "model": official,
            "extra_state": {},
            "last_optimizer_state": None,
            "optimizer_history": history,
        },
        path,
    )
    return official, plain


def test_official_roberta_checkpoint_restores_strictly_and_exports(toy_sentences, tmp_path):
    data = toy_sentences["classification"]
    official, plain = _random_official_roberta(data, tmp_path / "model.pt")
    adam = ["--optimizer", "adam", "--lr", "1e-5"]
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=sentence_args(data, extra=adam))
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    assert type(model).__name__ == "RobertaLRDropModel"
    trainer = Trainer(cfg, task, model, task.build_criterion(cfg.criterion))
    trainer.load_checkpoint(str(tmp_path / "model.pt"), reset_optimizer=True, reset_lr_scheduler=True)
    loaded = model.state_dict()
    assert set(loaded) - set(official) == {k for k in loaded if k.startswith("classification_heads.")}
    for k, v in official.items():
        assert torch.equal(loaded[k], v), k
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    # fairseq's own computation at inference: the plain model with these weights gives the same outputs
    plain.load_state_dict(loaded, strict=True)
    plain.eval(), model.eval()
    task.load_dataset("train")
    net_input = first_batch(task)["net_input"]
    with torch.no_grad():
        ours, theirs = model(**net_input, **HEAD)[0], plain(**net_input, **HEAD)[0]
    assert torch.equal(ours, theirs)

    from lrdrop_fairseq.export import to_plain_fairseq

    ckpt = tmp_path / "lrdrop.pt"
    checkpoint_utils.torch_persistent_save({"cfg": cfg, "model": loaded, "args": None}, str(ckpt))
    exported = to_plain_fairseq(torch.load(str(ckpt), map_location="cpu", weights_only=False))
    assert exported["cfg"]["model"]["arch"] == "roberta"
    assert exported["cfg"]["criterion"]["_name"] == "sentence_prediction"
    assert not {"kl_weight", "attn_weight", "prediction_mse_weight"} & set(exported["cfg"]["criterion"])


def _train(data, save_dir, extra, max_update=6):
    return run(
        [
            tool("fairseq-train"),
            *sentence_args(data, extra=extra),
            "--user-dir",
            os.path.join(ROOT, "lrdrop_fairseq"),
            "--save-dir",
            save_dir,
            "--max-update",
            str(max_update),
            "--optimizer",
            "adam",
            "--lr",
            "1e-3",
            "--log-format",
            "json",
            "--log-interval",
            "2",
            "--num-workers",
            "0",
            "--no-epoch-checkpoints",
        ]
    ).stdout


def _json_lines(out, tag):
    return [json.loads(line.split(f"| {tag} | ", 1)[1]) for line in out.splitlines() if f"| {tag} | " in line]


def test_fairseq_train_restore_and_validate(toy_sentences, tmp_path):
    data = toy_sentences["classification"]
    _random_official_roberta(data, tmp_path / "model.pt")
    save = str(tmp_path / "ckpt")
    out = _train(
        data,
        save,
        ["--restore-file", str(tmp_path / "model.pt"), "--reset-optimizer", "--reset-dataloader", "--reset-meters"]
        + [
            "--hidden-weight",
            "1",
            "--report-mcc",
            "--best-checkpoint-metric",
            "accuracy",
            "--maximize-best-checkpoint-metric",
        ],
    )
    assert "Loaded checkpoint" in out and "model.pt" in out, out[-3000:]
    inner = _json_lines(out, "train_inner")
    for term in ("kl_loss", "hidden_loss", "attn_loss", "accuracy", "objective"):
        assert term in inner[-1], (term, inner[-1])
    valid = _json_lines(out, "valid")
    assert "valid_accuracy" in valid[-1] and "valid_mcc" in valid[-1] and "valid_kl_loss" not in valid[-1]

    best = os.path.join(save, "checkpoint_best.pt")
    with_plugin = _validate(
        data, best, ["--user-dir", os.path.join(ROOT, "lrdrop_fairseq")], "lr_drop_sentence_prediction"
    )
    assert "| test |" in with_plugin and "mcc" in with_plugin, with_plugin[-2000:]
    # exported, plain fairseq (no plugin) loads it and scores the same
    plain = str(tmp_path / "plain.pt")
    assert "roberta" in run([tool("lrdrop-export"), best, plain]).stdout
    without = _validate(data, plain, [], "sentence_prediction")
    assert _json_tail(without, "test")["test_accuracy"] == _json_tail(with_plugin, "test")["test_accuracy"]


def _validate(data, checkpoint, user_dir, criterion):
    return run(
        [
            tool("fairseq-validate"),
            data,
            *user_dir,
            "--path",
            checkpoint,
            "--task",  # fairseq-validate wants both, though it builds them from the checkpoint
            "sentence_prediction",
            "--criterion",
            criterion,
            "--valid-subset",
            "test",
            "--cpu",
            "--max-tokens",
            "400",
            "--log-format",
            "json",
        ]
    ).stdout


def _json_tail(out, tag):
    return json.loads(out.split(f"| {tag} | ")[-1].splitlines()[0])


def test_fairseq_train_regression(toy_sentences, tmp_path):
    out = _train(
        toy_sentences["regression"],
        str(tmp_path / "reg"),
        [*REGRESSION, "--report-pearson-and-spearman", "--hidden-weight", "1"],
        max_update=4,
    )
    inner = _json_lines(out, "train_inner")
    assert "prediction_mse_loss" in inner[-1] and "kl_loss" not in inner[-1] and "hidden_loss" in inner[-1]
    assert "valid_pearson" in _json_lines(out, "valid")[-1]


def _tsv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")


def test_glue_columns_follow_fairseqs_preprocessing(tmp_path):
    from lrdrop_cli import glue_text

    glue = tmp_path / "glue_data"
    rte = [["index", "sentence1", "sentence2", "label"], ["0", "A cat sat.", "A cat is sitting.", "entailment"]]
    _tsv(glue / "RTE" / "train.tsv", rte)
    _tsv(glue / "RTE" / "dev.tsv", rte)
    assert glue_text.columns(str(glue), "RTE", str(tmp_path / "rte")) == {"train": 1, "valid": 1}
    assert (tmp_path / "rte" / "valid.raw.input1").read_text() == "A cat is sitting.\n"
    assert (tmp_path / "rte" / "train.label").read_text() == "entailment\n"
    # CoLA has no header; STS-B's 0..5 scores become 0..1; QQP's malformed rows are skipped
    _tsv(glue / "CoLA" / "train.tsv", [["src", "1", "", "Dogs bark."]])
    _tsv(glue / "CoLA" / "dev.tsv", [["src", "0", "*", "Bark dogs the."]])
    glue_text.columns(str(glue), "CoLA", str(tmp_path / "cola"))
    assert (tmp_path / "cola" / "valid.raw.input0").read_text() == "Bark dogs the.\n"
    assert (tmp_path / "cola" / "valid.label").read_text() == "0\n"
    sts = [["i"] * 10, ["0", "g", "f", "y", "s", "l", "l", "A man.", "A person.", "4.5"]]
    _tsv(glue / "STS-B" / "train.tsv", sts)
    _tsv(glue / "STS-B" / "dev.tsv", sts)
    glue_text.columns(str(glue), "STS-B", str(tmp_path / "sts"))
    assert (tmp_path / "sts" / "train.label").read_text() == "0.9\n"
    qqp = [["id", "q1", "q2", "question1", "question2", "is_duplicate"], ["1", "2", "3", "Why?", "How?", "0"]]
    _tsv(glue / "QQP" / "train.tsv", qqp + [["bad", "row"]])
    _tsv(glue / "QQP" / "dev.tsv", qqp)
    assert glue_text.columns(str(glue), "QQP", str(tmp_path / "qqp"))["train"] == 1
    with pytest.raises(FileNotFoundError, match="prepare.sh"):
        glue_text.columns(str(glue), "MRPC", str(tmp_path / "mrpc"))
    assert "NUM_CLASSES=1" in glue_text.hparams("STS-B") and "--report-mcc" in glue_text.hparams("CoLA")


def test_glue_recipe_trains_and_evaluates(toy_sentences, tmp_path):
    """examples/glue/train.sh and evaluate.sh as written, on the toy corpus with a tiny random
    checkpoint in the official layout (the shapes come in as extra arguments)."""
    train_sh = os.path.join(ROOT, "examples", "glue", "train.sh")
    p = run(["bash", train_sh, "NOPE", "lrdrop"], check=False)
    assert p.returncode == 2 and "unknown GLUE task 'NOPE'" in p.stdout
    p = run(["bash", train_sh, "RTE", "nonsense"], env={"DATA": toy_sentences["classification"]}, check=False)
    assert p.returncode == 2 and "usage" in p.stdout
    p = run(["bash", train_sh, "RTE", "lrdrop"], env={"DATA": str(tmp_path)}, check=False)
    assert p.returncode == 1 and "examples/glue/prepare.sh RTE" in p.stdout
    env = {"DATA": toy_sentences["classification"], "ROBERTA": str(tmp_path / "none.pt")}
    p = run(["bash", train_sh, "RTE", "lrdrop"], env=env, check=False)
    assert p.returncode == 1 and "roberta.large.tar.gz" in p.stdout

    _random_official_roberta(toy_sentences["classification"], tmp_path / "model.pt")
    save = tmp_path / "save"
    env = {**env, "ROBERTA": str(tmp_path / "model.pt"), "SAVE": str(save), "FP16": "0"}
    tiny = ["--cpu", "--max-positions", "64", "--max-update", "3", "--batch-size", "8", "--num-workers", "0"]
    tiny += ["--encoder-layers", "2", "--encoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32"]
    out = run(["bash", train_sh, "RTE", "lrdrop", *tiny, "--encoder-attention-heads", "2"], env=env).stdout
    assert "--arch', 'roberta_lrdrop_large'" in out or "roberta_lrdrop_large" in out
    assert "Loaded checkpoint" in out and "done training" in out, out[-3000:]
    evaluate = os.path.join(ROOT, "examples", "glue", "evaluate.sh")
    out = run(["bash", evaluate, "RTE", str(save / "checkpoint_best.pt")], env={"DATA": env["DATA"]}).stdout
    assert "| valid |" in out and "| test |" in out and "accuracy" in out, out


PACKAGES = """\
Package: nethack
Section: games
Description-md5: g1

Package: nethack-data
Section: games
Description-md5: g2

Package: mutt
Section: contrib/mail
Description-md5: m1

Package: twice
Section: net
Description-md5: g1

Package: libfoo
Section: libs
Description-md5: l1

Package: short
Section: mail
Description-md5: s1
"""
TRANSLATIONS = """\
Package: nethack
Description-md5: g1
Description-en: dungeon exploration game
 A single player dungeon exploration game with many monsters, items and
 levels to find on the way down.
 .
 This package contains the game.

Package: nethack-data
Description-md5: g2
Description-en: dungeon exploration game - data
 A single player dungeon exploration game with many monsters, items and
 levels to find on the way down.
 .
 This package contains the data files.

Package: mutt
Description-md5: m1
Description-en: text-based mailreader
 Mutt is a small but very powerful text-based mail client for reading,
 sorting and answering electronic mail in a terminal.

Package: libfoo
Description-md5: l1
Description-en: library for frobbing widgets
 Foo frobs widgets quickly and safely, with a small API that many tools use.

Package: short
Description-md5: s1
Description-en: tiny
 Too short.
"""


def test_debian_sections_join_dedup_and_grouped_split(tmp_path):
    from lrdrop_cli.corpora import debian_sections as deb

    descriptions = deb.long_descriptions(TRANSLATIONS.splitlines(True))
    examples = deb.section_examples(PACKAGES.splitlines(True), descriptions, ("games", "mail", "net"))
    by_label = sorted((label, text.split(".")[0]) for text, label, _group in examples)
    # g1 sits under games and net: dropped; libs is not a chosen section; "short" is too short
    assert by_label == [("games", "dungeon exploration game - data"), ("mail", "text-based mailreader")]
    assert examples[0][0].startswith("dungeon exploration game - data. A single player dungeon")
    (tmp_path / "P").write_text(PACKAGES + "\nPackage: nethack-x\nSection: games\nDescription-md5: g3\n")
    (tmp_path / "T").write_text(
        TRANSLATIONS + "\nPackage: nethack-x\nDescription-md5: g3\nDescription-en: dungeon game - X\n"
        " A single player dungeon exploration game with many monsters, items and\n"
        " levels to find on the way down.\n .\n X11 front end.\n"
    )
    sizes = deb.build(str(tmp_path / "out"), ("games", "mail"), 0, 1, 1, str(tmp_path / "P"), str(tmp_path / "T"))
    # without net, g1 is games only: three nethack packages sharing their first paragraph, one split
    assert sizes in ({"test": 1, "valid": 0, "train": 3}, {"test": 3, "valid": 0, "train": 1})
    for split in ("train", "test"):
        labels = (tmp_path / "out" / f"{split}.label").read_text().split()
        assert labels in (["games"] * 3, ["mail"])
    with pytest.raises(ValueError, match="--sections: no packages .* in web"):
        deb.build(str(tmp_path / "o2"), ("games", "web"), 0, 1, 1, str(tmp_path / "P"), str(tmp_path / "T"))


def test_shrunken_classification_demo_end_to_end(tmp_path):
    """lrdrop-demo-classification on your own files: corpus -> spm -> binarize -> baseline and
    LR-Drop training -> test accuracy, macro-F1, predictions; a tiny model, a few updates."""
    from lrdrop_cli.corpora.toy import write_classification_corpus

    raw = write_classification_corpus(str(tmp_path / "raw"), (("train", 200),))
    out = tmp_path / "demo"
    small = "--encoder-layers 1 --encoder-embed-dim 32 --encoder-ffn-embed-dim 64 --log-interval 2"
    p = run(
        [
            tool("lrdrop-demo-classification"),
            "--out",
            str(out),
            "--input",
            f"{raw}/train.input0",
            "--labels",
            f"{raw}/train.label",
            "--vocab",
            "40",
            "--valid-size",
            "30",
            "--test-size",
            "40",
            "--updates",
            "6",
            "--warmup",
            "2",
            "--max-tokens",
            "500",
            "--train-args",
            small,
        ]
    )
    assert "test: 40 examples, 2 classes" in p.stdout and "GOLD" in p.stdout and "PRED" in p.stdout
    assert '"kl_loss"' in (out / "lrdrop-s1" / "train.log").read_text()
    assert '"kl_loss"' not in (out / "baseline-s1" / "train.log").read_text()
    runs = json.loads((out / "result.json").read_text())["runs"]
    assert set(runs) == {"baseline-s1", "lrdrop-s1"}
    # each score recomputed from the files the demo wrote, with scikit-learn
    from sklearn.metrics import f1_score

    gold = (out / "corpus" / "test.label").read_text().splitlines()
    for name, r in runs.items():
        pred = (out / name / "test.pred").read_text().splitlines()
        assert len(pred) == len(gold) == 40 and set(pred) <= set(gold)  # label names, not indices
        assert r["accuracy"] == pytest.approx(100 * sum(p == g for p, g in zip(pred, gold)) / 40)
        assert r["macro_f1"] == pytest.approx(100 * f1_score(gold, pred, average="macro"))
        # and fairseq's own accuracy on the binarized test set agrees: the names map back right
        best = str(out / name / "checkpoints" / "checkpoint_best.pt")
        plugin = ["--user-dir", os.path.join(ROOT, "lrdrop_fairseq")]
        validated = _json_tail(_validate(str(out / "data-bin"), best, plugin, "sentence_prediction"), "test")
        assert r["accuracy"] == pytest.approx(float(validated["test_accuracy"]), abs=0.01)
    # another seed later: the earlier runs stay in the table and in result.json, untrained again
    p = run([tool("lrdrop-demo-classification"), "--out", str(out), "--modes", "baseline,lrdrop", "--seeds", "1,2",
             "--updates", "6", "--warmup", "2", "--max-tokens", "500", "--train-args", small])  # fmt: skip
    assert "(done already" in p.stdout and "baseline       2" in p.stdout
    rerun = json.loads((out / "result.json").read_text())["runs"]
    assert set(rerun) == {"baseline-s1", "lrdrop-s1", "baseline-s2", "lrdrop-s2"}
    assert rerun["baseline-s1"] == runs["baseline-s1"]
    p = run([tool("lrdrop-demo-classification"), "--out", str(out), "--modes", "nope"], check=False)
    assert p.returncode != 0 and "--modes: unknown nope" in p.stdout
