#!/usr/bin/env python
"""Moved to ``lrdrop-plot`` (lrdrop_cli/plot_curves.py); kept so old commands still work."""

from lrdrop_cli.plot_curves import main

if __name__ == "__main__":
    main()
