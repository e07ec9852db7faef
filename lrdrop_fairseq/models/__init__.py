from . import transformer_lrdrop  # noqa: F401  (registers the architectures)
