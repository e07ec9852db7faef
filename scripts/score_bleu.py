#!/usr/bin/env python
"""Moved to ``lrdrop-score-bleu`` (lrdrop_cli/score_bleu.py); kept so old commands still work."""

from lrdrop_cli.score_bleu import main

if __name__ == "__main__":
    main()
