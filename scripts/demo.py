#!/usr/bin/env python
"""Moved to ``lrdrop-demo`` (lrdrop_cli/demo.py); kept so old commands still work."""

from lrdrop_cli.demo import main

if __name__ == "__main__":
    main()
