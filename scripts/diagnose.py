#!/usr/bin/env python
"""Moved to ``lrdrop-diagnose`` (lrdrop_cli/diagnose.py); kept so old commands still work."""

from lrdrop_cli.diagnose import main

if __name__ == "__main__":
    main()
