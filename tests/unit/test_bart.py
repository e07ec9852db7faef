"""bart_lrdrop: fairseq's BART with records; the official bart.large checkpoint restores into it."""

import argparse

import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.trainer import Trainer
from helpers import build, first_batch

from lrdrop.records import ATTN_TYPES
from lrdrop_fairseq.export import to_plain_fairseq


def test_no_new_parameters_and_identical_outputs(toy_data_joined):
    task, lr_model, _ = build(toy_data_joined, arch="bart_lrdrop_base")
    _, plain, _ = build(toy_data_joined, arch="bart_base", criterion="label_smoothed_cross_entropy")
    assert type(plain).__name__ == "BARTModel"
    assert list(lr_model.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(lr_model.state_dict())
    sample = first_batch(task)
    lr_model.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(lr_model(**sample["net_input"])[0], plain(**sample["net_input"])[0], rtol=0, atol=0)


def test_lr_drop_on_bart_records_every_layer_and_trains(toy_data_joined):
    task, model, crit = build(
        toy_data_joined, arch="bart_lrdrop_base", extra=["--kl-weight", "1", "--hidden-weight", "1"]
    )
    model.train()
    sample = first_batch(task)
    loss, sample_size, log = crit(model, sample)
    for term in ("kl_loss", "hidden_loss", "attn_loss"):
        assert log[term] > 0, term
    loss.backward()
    for name, p in model.named_parameters():
        if "classification_heads" in name:
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {name}"
    # the explicit attention path is switched off again after the training forward
    assert not any(getattr(m, "record_weights", False) for m in model.modules())


def _bart_large_args(data, arch, task="translation"):
    parser = options.get_training_parser()
    return options.parse_args_and_arch(
        parser,
        input_args=[
            data,
            "--task",
            task,
            "--arch",
            arch,
            "--criterion",
            "lr_drop",
            "--label-smoothing",
            "0.1",
            "--cpu",
            "--max-tokens",
            "400",
            "--optimizer",
            "adam",
            "--lr",
            "3e-5",
        ],
    )


def test_bart_large_checkpoint_restores_strictly_into_bart_lrdrop_large(toy_data_joined, tmp_path):
    """What `fairseq-train --restore-file bart.large/model.pt --reset-optimizer ...` does, on a
    random bart_large-shaped checkpoint laid out like the official one (a <mask> row in the
    embeddings, no separate output projection, an argparse config)."""
    args = _bart_large_args(toy_data_joined, "bart_large")
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(0)
    plain = task.build_model(cfg.model)
    state = plain.state_dict()
    n_layers = sum(1 for k in state if k.startswith("encoder.layers.") and k.endswith(".fc1.weight"))
    assert n_layers == 12 and state["encoder.embed_tokens.weight"].shape[1] == 1024
    mask_row = torch.randn(1, 1024)
    official = {k: v.clone() for k, v in state.items() if k != "decoder.output_projection.weight"}
    for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        official[k] = torch.cat([state[k], mask_row])  # the denoising task's <mask> symbol
    path = tmp_path / "model.pt"
    torch.save(
        {
            "args": argparse.Namespace(**{**vars(args), "arch": "bart_large", "task": "translation"}),
            "model": official,
            "extra_state": {},
            "last_optimizer_state": None,
            "optimizer_history": [
                {
                    "criterion_name": "CrossEntropyCriterion",
                    "optimizer_name": "FairseqAdam",
                    "lr_scheduler_state": {"best": None},
                    "num_updates": 500000,
                }
            ],
        },
        path,
    )
    del plain, official

    lr_args = _bart_large_args(toy_data_joined, "bart_lrdrop_large")
    lr_cfg = convert_namespace_to_omegaconf(lr_args)
    lr_task = tasks.setup_task(lr_cfg.task)
    lr_model = lr_task.build_model(lr_cfg.model)
    assert type(lr_model).__name__ == "BARTLRDropModel"
    trainer = Trainer(lr_cfg, lr_task, lr_model, lr_task.build_criterion(lr_cfg.criterion))
    trainer.load_checkpoint(str(path), reset_optimizer=True, reset_lr_scheduler=True, reset_meters=True)
    loaded = lr_model.state_dict()
    assert set(loaded) == set(state)
    for k, v in state.items():
        assert torch.equal(loaded[k], v), k

    # and the export goes back to plain bart_large, loadable by fairseq without the plugin's names
    ckpt = tmp_path / "lrdrop.pt"
    checkpoint_utils.torch_persistent_save({"cfg": lr_cfg, "model": loaded, "args": None}, str(ckpt))
    plain_state = to_plain_fairseq(torch.load(str(ckpt), map_location="cpu"))
    assert plain_state["cfg"]["model"]["arch"] == "bart_large"
    assert plain_state["cfg"]["model"]["_name"] == "bart_large"


def test_bart_records_cover_all_layers(toy_data_joined):
    from lrdrop.records import RecordSpec

    task, model, _ = build(toy_data_joined, arch="bart_lrdrop_base")
    model.train()
    sample = first_batch(task)
    doubled = {k: torch.cat([v, v]) for k, v in sample["net_input"].items()}
    rec = model(**doubled, lrdrop_record=RecordSpec())[1]["lrdrop"]
    assert len(rec["encoder_states"]) == len(rec["decoder_states"]) == 2
    for t in ATTN_TYPES:
        assert len(rec["attn"][t]) == 2 and rec["attn"][t][0].probs().shape[0] == 2  # 2 heads
