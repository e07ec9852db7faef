"""The lrdrop-fairseq tools: a library with thin console commands (see setup.py).

Like ``fairseq_cli`` beside ``fairseq`` and OpenNMT-py's ``onmt/bin``: each ``lrdrop-*``
command is a module of :mod:`lrdrop_cli.bin` (a parser, one call into the library, an exit
code) and nothing imports those. The library: :mod:`~lrdrop_cli.runs` and
:mod:`~lrdrop_cli.presets` (what a run trains), :mod:`~lrdrop_cli.steps` and
:mod:`~lrdrop_cli.pipelines` (the demos, lrdrop-compare), :mod:`~lrdrop_cli.corpora`,
:mod:`~lrdrop_cli.metrics`, :mod:`~lrdrop_cli.curves`, :mod:`~lrdrop_cli.measure`,
:mod:`~lrdrop_cli.fairseq_io`, :mod:`~lrdrop_cli.modes`. The plugin itself,
``lrdrop_fairseq``, never imports this package.
"""
