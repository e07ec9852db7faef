#!/usr/bin/env python
"""Moved to ``lrdrop-benchmark`` (lrdrop_cli/benchmark.py); kept so old commands still work."""

from lrdrop_cli.benchmark import main

if __name__ == "__main__":
    main()
