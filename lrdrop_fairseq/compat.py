"""Narrow fixes that let fairseq 0.12 run on Python 3.11 / torch >= 2.6.

Everything that patches fairseq or torch lives here, is applied once from
``lrdrop_fairseq/__init__.py``, and says why it exists and when it can go.
"""

import argparse
import collections
import contextlib
import logging
import warnings


@contextlib.contextmanager
def preserve_root_logger():
    """fairseq's ``models/wav2vec/wav2vec2_classification.py`` calls
    ``logging.basicConfig(level=DEBUG)`` at import, which turns the root logger
    to DEBUG in any program that imports fairseq before configuring logging.
    Remove once fairseq no longer configures logging at import."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)


def allow_fairseq_checkpoints_in_safe_load():
    """torch >= 2.6 loads with ``weights_only=True`` by default, and fairseq's
    ``checkpoint_utils.load_checkpoint_to_cpu`` (generate, resume, distributed
    resume) calls ``torch.load`` without ``weights_only``; the safe unpickler
    then refuses the config objects fairseq stores. Allow-list exactly those
    classes instead of turning the check off. Remove once fairseq passes
    ``weights_only`` itself."""
    try:
        from torch.serialization import add_safe_globals
    except ImportError:  # torch < 2.4 loads fairseq checkpoints unrestricted
        return
    import typing

    # On resume, rank 0 loads the checkpoint and broadcasts it as a pickle of the loaded
    # state, whose OmegaConf configs carry these builtins as type metadata.
    safe = [argparse.Namespace, typing.Any, dict, list, int, collections.defaultdict]
    try:  # the broadcast replaces tensors by placeholders (fairseq.distributed.utils)
        from fairseq.distributed.utils import _TensorPlaceholder

        safe.append(_TensorPlaceholder)
    except ImportError:
        pass
    try:  # configs saved as OmegaConf objects (older fairseq checkpoints, some hub models)
        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode

        safe += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
    except ImportError:
        pass
    add_safe_globals(safe)


def silence_known_harmless_warnings():
    """Warnings fairseq 0.12 triggers on current torch/hydra that a user cannot
    act on: they come from fairseq's own code, not from the user's flags.
    Remove each filter once fairseq's code no longer triggers it."""
    # fairseq/tasks/fairseq_task.py uses the deprecated torch.cuda.amp.autocast
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.cuda\.amp\.autocast.*")
    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.cuda\.amp\.GradScaler.*")
    # fairseq's data loaders ask for pin_memory also when there is no accelerator
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*pin_memory.*")
    # fairseq/dataclass/utils.py composes its configs the way hydra < 1.1 expected: hydra's
    # deprecation notices, raised in hydra's modules, and three it attributes to the caller
    warnings.filterwarnings("ignore", category=UserWarning, module=r"hydra\..*")
    for hydra_notice in (
        r"\s*The version_base parameter is not specified",
        r"\s*'.*' is validated against ConfigStore schema with the same name",
        r"In '.*': Defaults list is missing `_self_`",
    ):
        warnings.filterwarnings("ignore", category=UserWarning, message=hydra_notice)
    # fairseq passes a float causal mask with a bool padding mask to torch's MHA
    warnings.filterwarnings("ignore", category=UserWarning, message=r".*mismatched key_padding_mask and attn_mask.*")
    # torch.jit.script is deprecated; fairseq scripts a few helpers at import
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit\.script.*")


def keep_remainder_batches():
    """fairseq-fixed 0.12.3.1's ``data_utils.batch_by_size`` drops the last batch when
    its size is not a multiple of ``--required-batch-size-multiple`` (default 8).
    Training loses a few sentences per epoch, but validation and fairseq-generate
    silently skip test sentences (30 test sentences gave 24 translations), so
    BLEU would be computed on a subset. Put the dropped indices back as a last
    batch, as fairseq 0.12.2 does. Remove once fairseq-fixed keeps the remainder."""
    import numpy as np
    from fairseq.data import data_utils

    original = data_utils.batch_by_size
    if getattr(original, "_lrdrop_keeps_remainder", False):
        return

    def batch_by_size(
        indices,
        num_tokens_fn,
        num_tokens_vec=None,
        max_tokens=None,
        max_sentences=None,
        required_batch_size_multiple=1,
        fixed_shapes=None,
    ):
        batches = original(
            indices,
            num_tokens_fn,
            num_tokens_vec,
            max_tokens,
            max_sentences,
            required_batch_size_multiple,
            fixed_shapes,
        )
        if fixed_shapes is not None:
            return batches
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        covered = sum(len(b) for b in batches)
        if covered < len(indices):  # batches are consecutive runs of indices: the tail was dropped
            batches = list(batches) + [indices[covered:]]
        return batches

    batch_by_size._lrdrop_keeps_remainder = True
    data_utils.batch_by_size = batch_by_size


def apply():
    silence_known_harmless_warnings()
    allow_fairseq_checkpoints_in_safe_load()
    keep_remainder_batches()
