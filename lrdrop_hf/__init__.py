"""LR-Drop and R-Drop for Hugging Face Transformers, on the framework-free core (:mod:`lrdrop`).

- :class:`LRDropArguments`: the loss's options, the same names and meanings as fairseq's
  ``--criterion lr_drop`` (``HfArgumentParser`` reads it);
- :func:`lrdrop_loss`: the loss of one batch for a custom loop;
- :class:`LRDropTrainer`, :class:`LRDropSeq2SeqTrainer`: the Trainers with ``compute_loss``
  replaced, each term logged.

Models: encoder-decoders of the BART family (BART, mBART, Marian, Pegasus) and T5 (mT5), encoder
classifiers of the BERT family (BERT, RoBERTa), and causal LMs (GPT-2, Llama, Qwen2, Mistral; any
causal LM with R-Drop alone); :mod:`lrdrop_hf.layout` says where each keeps its layers,
:mod:`lrdrop_hf.recording` how the attention is read (transformers' attention interface).
"""

from .arguments import LRDropArguments
from .loss import LRDropLoss, lrdrop_loss

__all__ = ["LRDropArguments", "LRDropLoss", "lrdrop_loss", "LRDropTrainer", "LRDropSeq2SeqTrainer"]


def __getattr__(name):  # the trainers import transformers' Trainer (slow): on first use
    if name in ("LRDropTrainer", "LRDropSeq2SeqTrainer"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
