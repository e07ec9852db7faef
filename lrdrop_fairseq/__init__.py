"""LR-Drop (Layer-wise Regularized Dropout) for fairseq.

Importing this package (or ``--user-dir lrdrop_fairseq``) registers the
``lr_drop`` and ``lr_drop_sentence_prediction`` criteria and the
``transformer_lrdrop``, ``bart_lrdrop`` and ``roberta_lrdrop`` architectures, and
applies the compatibility fixes in :mod:`.compat`.
"""

from . import compat

with compat.preserve_root_logger():  # fairseq configures logging at import
    compat.apply()
    import fairseq.models  # noqa: F401

    from . import criterions, models  # noqa: F401  (registration)

__version__ = "0.1.0"
