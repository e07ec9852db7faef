#!/usr/bin/env python
"""Moved to ``lrdrop-build-ding-corpus`` (lrdrop_cli/build_ding_corpus.py); kept so old commands still work."""

from lrdrop_cli.build_ding_corpus import main

if __name__ == "__main__":
    main()
