from . import bart_lrdrop, roberta_lrdrop, transformer_lrdrop  # noqa: F401  (registers the architectures)

# every ``_lrdrop`` architecture -> (fairseq's architecture of the same shapes, its function)
PLAIN_ARCH = {**transformer_lrdrop.PLAIN_ARCH, **bart_lrdrop.PLAIN_ARCH, **roberta_lrdrop.PLAIN_ARCH}
