"""Measurements of the loss itself: its cost (benchmark) and what its terms do to a trained
model (diagnose). Their commands are in :mod:`lrdrop_cli.bin`."""
