"""The lrdrop-fairseq tools, installed as ``lrdrop-*`` console commands (see setup.py).

Like ``fairseq_cli`` next to ``fairseq``: each module is one command (a parser, the
work, ``main()``). The plugin itself, ``lrdrop_fairseq``, never imports this package.
"""
