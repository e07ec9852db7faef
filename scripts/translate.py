#!/usr/bin/env python
"""Moved to ``lrdrop-translate`` (lrdrop_cli/translate.py); kept so old commands still work."""

from lrdrop_cli.translate import main

if __name__ == "__main__":
    main()
