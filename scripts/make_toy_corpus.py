#!/usr/bin/env python
"""Moved to ``lrdrop-make-toy-corpus`` (lrdrop_cli/make_toy_corpus.py); kept so old commands still work."""

from lrdrop_cli.make_toy_corpus import main

if __name__ == "__main__":
    main()
