#!/usr/bin/env python
"""Moved: this is ``lrdrop-benchmark`` (lrdrop_cli/benchmark.py); kept so old commands still work."""
from lrdrop_cli.benchmark import main

if __name__ == "__main__":
    main()
