from . import lr_drop, lr_drop_sentence_prediction  # noqa: F401  (registers the criteria)
