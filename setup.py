"""lrdrop-fairseq: LR-Drop (Layer-wise Regularized Dropout) as a fairseq plugin.

Install with ``make setup`` (see README): torch must be installed *before* this
package, and fairseq (the ``fairseq`` extra) must be built with ``--no-build-isolation`` so
that its C++ extensions compile against that torch instead of a freshly downloaded one. The
Hugging Face adapter alone (``.[hf]``) needs no fairseq.
"""

import sys

from setuptools import find_packages, setup

if sys.version_info < (3, 8):
    sys.exit("lrdrop-fairseq needs Python >= 3.8 (fairseq 0.12 does); found %s" % sys.version.split()[0])

setup(
    name="lrdrop-fairseq",
    version="0.1.0",
    description="LR-Drop (Layer-wise Regularized Dropout) and R-Drop for fairseq translation, summarization "
    "and sentence classification",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.8",
    packages=find_packages(
        include=[
            "lrdrop",
            "lrdrop.*",
            "lrdrop_hf",
            "lrdrop_hf.*",
            "lrdrop_fairseq",
            "lrdrop_fairseq.*",
            "lrdrop_cli",
            "lrdrop_cli.*",
        ]
    ),
    entry_points={
        "console_scripts": [
            "lrdrop-benchmark = lrdrop_cli.bin.benchmark:main",
            "lrdrop-benchmark-hf = lrdrop_cli.bin.benchmark_hf:main",
            "lrdrop-build-debian-sections = lrdrop_cli.bin.build_debian_sections:main",
            "lrdrop-build-debian-summaries = lrdrop_cli.bin.build_debian_summaries:main",
            "lrdrop-build-ding-corpus = lrdrop_cli.bin.build_ding_corpus:main",
            "lrdrop-build-libreoffice-corpus = lrdrop_cli.bin.build_libreoffice_corpus:main",
            "lrdrop-compare = lrdrop_cli.bin.compare:main",
            "lrdrop-demo = lrdrop_cli.bin.demo:main",
            "lrdrop-demo-classification = lrdrop_cli.bin.demo_classification:main",
            "lrdrop-demo-summarization = lrdrop_cli.bin.demo_summarization:main",
            "lrdrop-diagnose = lrdrop_cli.bin.diagnose:main",
            "lrdrop-export = lrdrop_cli.bin.export_checkpoint:main",
            "lrdrop-hypotheses = lrdrop_cli.bin.hypotheses:main",
            "lrdrop-make-toy-corpus = lrdrop_cli.bin.make_toy_corpus:main",
            "lrdrop-modes = lrdrop_cli.bin.modes:main",
            "lrdrop-plot = lrdrop_cli.bin.plot_curves:main",
            "lrdrop-score-bleu = lrdrop_cli.bin.score_bleu:main",
            "lrdrop-score-rouge = lrdrop_cli.bin.score_rouge:main",
            "lrdrop-translate = lrdrop_cli.bin.translate:main",
        ],
    },
    # The core (lrdrop) needs torch only: the Hugging Face adapter installs without fairseq, which
    # must be built from source (`pip install -e ".[hf]"`); the fairseq plugin and the tools are the
    # [fairseq] extra (`make setup` installs both, with the test tools).
    install_requires=[
        # torch is deliberately unpinned here: `make setup` installs the pinned
        # build first (TORCH=...), and a user's own CUDA build must be kept.
        "torch>=1.13",
    ],
    extras_require={
        "fairseq": [
            # The official fairseq 0.12.2 does not import on Python 3.11 (dataclass
            # mutable defaults); fairseq-fixed is a maintained fork of fairseq main
            # with the same import name `fairseq`.
            'fairseq==0.12.2; python_version < "3.11"',
            'fairseq-fixed==0.12.3.1; python_version >= "3.11"',
            "sacrebleu>=2.0",
            "sentencepiece>=0.1.97",
            "sacremoses>=0.0.53",
            "rouge-score>=0.1.2",
            "scikit-learn>=1.0",  # F1 / Matthews correlation (fairseq's sentence_prediction imports it too)
            "matplotlib>=3.5",
            "tensorboardX>=2.5",  # fairseq's TensorBoard logging (--tensorboard-logdir)
        ],
        # ruff: lint + format check in make test; pytest-xdist: the suite on every core (make test)
        "test": ["pytest>=7", "pytest-xdist>=3.5", "ruff==0.17.6"],
        # the Hugging Face adapter (lrdrop_hf): transformers 5.x, tested on 5.17; accelerate: the
        # Trainer needs it; peft: LoRA; datasets, sacrebleu, sentencepiece: examples/hf
        "hf": [
            "transformers>=5.17,<6",
            "accelerate>=1.1",
            "peft>=0.13",
            "datasets>=2.14",
            "sacrebleu>=2.0",
            "sentencepiece>=0.1.97",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
