#!/usr/bin/env python
"""Moved to ``lrdrop-build-debian-summaries`` (lrdrop_cli/build_debian_summaries.py)."""

from lrdrop_cli.build_debian_summaries import main

if __name__ == "__main__":
    main()
