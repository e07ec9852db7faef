"""``LRDropTrainer`` and ``LRDropSeq2SeqTrainer``: transformers' Trainers with ``compute_loss``
replaced by the LR-Drop loss in training (evaluation and generation run the model's own single
pass), each term logged with the Trainer's ``loss``.

    trainer = LRDropSeq2SeqTrainer(model=model, args=training_args, lrdrop_args=LRDropArguments(...), ...)

The Trainer's ``label_smoothing_factor`` is the cross-entropy's label smoothing; under gradient
accumulation (and ``average_tokens_across_devices``) the loss is normalised by the Trainer's
``num_items_in_batch``, as its own loss is, so that accumulated micro-batches and devices add up to
one batch: every term is a sum over sentences.
"""

import torch
from transformers import Seq2SeqTrainer, Trainer

from lrdrop.options import LRDropConfigError

from .arguments import LRDropArguments
from .loss import LRDropLoss


class _LRDropMixin:
    def __init__(self, *args, lrdrop_args: LRDropArguments = None, **kwargs):
        if kwargs.get("compute_loss_func") is not None:
            raise LRDropConfigError(
                f"{type(self).__name__}(compute_loss_func=...): the training loss is the LR-Drop loss, which would "
                "ignore it. Build the Trainer without compute_loss_func, or use transformers' Trainer with it."
            )
        super().__init__(*args, **kwargs)
        self.lrdrop_args = lrdrop_args or LRDropArguments()
        self.lrdrop_loss = LRDropLoss(self.lrdrop_args, label_smoothing=self.args.label_smoothing_factor)
        # the Trainer's label smoother stays for evaluation (eval_loss label-smoothed, as a baseline
        # Trainer's); training never reaches it: the LR-Drop loss smooths its cross-entropy alike
        self.model_accepts_loss_kwargs = True  # the loss is normalised by num_items_in_batch
        self._lrdrop_sums, self._lrdrop_steps = {}, 0
        self._refuse_unsupported_parallelism()

    def _refuse_unsupported_parallelism(self):
        """Data parallelism across processes (torchrun, DDP) only: every other layout of the work
        would make the loss silently wrong, so it is refused here, before any step."""
        name = type(self).__name__
        if self.args.n_gpu > 1:
            raise LRDropConfigError(
                f"{name} sees {self.args.n_gpu} GPUs in one process, where the Trainer uses torch's "
                "DataParallel: its replicas run the layer terms' hooks in threads, and it hands the loss per-GPU "
                "token counts. Launch with torchrun --nproc_per_node "
                f"{self.args.n_gpu} (DistributedDataParallel), or make one GPU visible (CUDA_VISIBLE_DEVICES=0)."
            )
        split = {
            kind: size
            for kind, getter in (("tensor", "get_tp_size"), ("context", "get_cp_size"), ("sequence", "get_sp_size"))
            if (size := getattr(self, getter, lambda: 1)()) > 1
        }
        if split:
            sizes = ", ".join(f"{kind} parallelism over {size} ranks" for kind, size in split.items())
            raise LRDropConfigError(
                f"{name} is set up for {sizes}: that splits a layer's heads or a sentence's tokens across ranks, "
                "so no rank holds both copies' whole attention maps and hidden states, and the Trainer's loss scale "
                "counts those ranks differently. Train with data parallelism only (torchrun, DDP): drop the "
                "model's tp_plan / the ParallelismConfig's tp_size, cp_size and sp_size."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, logs, outputs = self.lrdrop_loss(model, inputs, num_items_in_batch, self.state.global_step)
        for name, value in logs.items():  # tensors: summed on the device, read once per log
            self._lrdrop_sums[name] = self._lrdrop_sums.get(name, 0.0) + value
        self._lrdrop_steps += 1
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as Trainer.compute_loss does for its own loss
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, *args, **kwargs):
        """A training log: ``loss`` is the task loss per copy (label-smoothed, as a baseline's and
        fairseq's ``loss``), ``objective`` the whole LR-Drop loss the Trainer optimises, and each term
        and health figure its mean since the last log over every process, to 4 significant digits."""
        if self._lrdrop_steps and "loss" in logs:
            names = sorted(self._lrdrop_sums)
            means = torch.stack([torch.as_tensor(self._lrdrop_sums[n], dtype=torch.float32) for n in names])
            means = means.to(self.args.device) / self._lrdrop_steps
            if self.accelerator.num_processes > 1:  # every process logs at the same steps
                means = self.accelerator.reduce(means, reduction="mean")
            values = dict(zip(names, means.tolist()))
            logs["objective"] = logs["loss"]
            logs["loss"] = _significant(values.pop("ce_loss"))
            logs.update({name: _significant(v) for name, v in values.items()})
            self._lrdrop_sums, self._lrdrop_steps = {}, 0
        super().log(logs, *args, **kwargs)


def _significant(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits (a term of 9e-6 keeps its digits, as fairseq's log)."""
    return float(f"{x:.{digits}g}")


class LRDropTrainer(_LRDropMixin, Trainer):
    """transformers' ``Trainer`` training with the LR-Drop loss (encoder classifiers: BERT, RoBERTa)."""


class LRDropSeq2SeqTrainer(_LRDropMixin, Seq2SeqTrainer):
    """transformers' ``Seq2SeqTrainer`` training with the LR-Drop loss (BART, mBART, Marian, T5)."""
