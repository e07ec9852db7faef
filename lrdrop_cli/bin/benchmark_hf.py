"""lrdrop-benchmark-hf: see :mod:`lrdrop_cli.measure.hf_benchmark`."""

from lrdrop_cli.measure.hf_benchmark import main

if __name__ == "__main__":
    main()
