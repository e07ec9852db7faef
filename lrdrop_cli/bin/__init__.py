"""The console commands (setup.py's ``lrdrop-*``), one module each, as fairseq_cli's and
OpenNMT-py's ``onmt/bin``: a parser, one call into the library, an exit code. No other
module imports these."""
