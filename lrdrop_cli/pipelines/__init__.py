"""The pipelines behind the demos and lrdrop-compare: corpus -> sentencepiece -> binarize ->
train -> decode -> score -> plot, from the shared steps (:mod:`lrdrop_cli.steps`) and the typed
runs (:mod:`lrdrop_cli.runs`). Their commands are in :mod:`lrdrop_cli.bin`."""
