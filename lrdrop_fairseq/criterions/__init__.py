from . import lr_drop  # noqa: F401  (registers the criterion)
