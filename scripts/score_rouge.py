#!/usr/bin/env python
"""Moved to ``lrdrop-score-rouge`` (lrdrop_cli/score_rouge.py); kept so old commands still work."""

from lrdrop_cli.score_rouge import main

if __name__ == "__main__":
    main()
