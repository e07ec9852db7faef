"""The corpora the demos and studies train on, built on the user's machine and never shipped:
one module each (Ding, Debian summaries and sections, LibreOffice, the toy corpus), sharing
:mod:`lrdrop_cli.corpora.common` (splits, writing, fetching from Debian's archive)."""
