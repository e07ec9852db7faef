#!/usr/bin/env python
"""Moved to ``lrdrop-export`` (lrdrop_cli/export_checkpoint.py); kept so old commands still work."""

from lrdrop_cli.export_checkpoint import main

if __name__ == "__main__":
    main()
