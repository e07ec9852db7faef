"""Two gloo processes equal one process with the doubled batch, under DistributedDataParallel (as
the Trainer wraps a model under torchrun) and under FSDP2 (``fully_shard`` per layer and the root:
each layer's weights are gathered for its forward and resharded after it, which the layer terms
never notice, since they read activations only): every term is a sum over sentences, each rank's
loss is divided by the global target-token count (the Trainer's num_items_in_batch with
average_tokens_across_devices) and multiplied by the world size, and the gradients are averaged."""

import os
import socket

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from models import batch, fixed_halves, tiny  # noqa: E402

from lrdrop_hf import LRDropArguments, LRDropLoss  # noqa: E402

ARGS = LRDropArguments(kl_weight=1.0, hidden_weight=1.0, attn_weight=1.0)


def _grads(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def _worker(rank, port, out, wrapper):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    fixed_halves(setattr)
    torch.manual_seed(0)
    model = tiny("bart", 0.0)
    model.train()
    if wrapper == "ddp":
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    else:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (2,))
        for layer in [*model.model.encoder.layers, *model.model.decoder.layers]:
            fully_shard(layer, mesh=mesh)
        wrapped = fully_shard(model, mesh=mesh)
    full = batch("bart")
    global_items = int((full["labels"] != -100).sum())
    rows = slice(0, 2) if rank == 0 else slice(2, 3)  # uneven shards: 2 sentences and 1
    local = {k: v[rows] for k, v in full.items()}
    loss, logs, _ = LRDropLoss(ARGS)(wrapped, local, num_items_in_batch=global_items)
    (loss * 2).backward()  # x world size, as the Trainer does for num_items_in_batch over devices
    grads = [p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad for p in model.parameters()]
    if rank == 0:
        torch.save(torch.cat([g.reshape(-1) for g in grads if g is not None]), out)
    dist.destroy_process_group()


@pytest.mark.parametrize("wrapper", ["ddp", "fsdp2"])
def test_two_gloo_processes_equal_one_process_with_the_whole_batch(tmp_path, monkeypatch, wrapper):
    fixed_halves(monkeypatch.setattr)
    torch.manual_seed(0)
    model = tiny("bart", 0.0)
    model.train()
    loss, logs, _ = LRDropLoss(ARGS)(model, batch("bart"))
    assert all(float(logs[t]) > 1e-6 for t in ("kl_loss", "hidden_loss", "attn_loss"))  # the halves differ
    loss.backward()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = str(tmp_path / "grads.pt")
    mp.spawn(_worker, args=(port, out, wrapper), nprocs=2, join=True)
    torch.testing.assert_close(torch.load(out), _grads(model), rtol=1e-4, atol=1e-6)
