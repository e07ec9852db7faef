#!/usr/bin/env python
"""Moved to ``lrdrop-compare`` (lrdrop_cli/compare.py); kept so old commands still work."""

from lrdrop_cli.compare import main

if __name__ == "__main__":
    main()
