#!/usr/bin/env python
"""Moved: this is ``lrdrop-build-debian-summaries`` (lrdrop_cli/build_debian_summaries.py); kept so old commands still work."""
from lrdrop_cli.build_debian_summaries import main

if __name__ == "__main__":
    main()
