#!/usr/bin/env python
"""Moved to ``lrdrop-demo-summarization`` (lrdrop_cli/demo_summarization.py); kept so old commands still work."""

from lrdrop_cli.demo_summarization import main

if __name__ == "__main__":
    main()
