"""LR-Drop's framework-free core: what every adapter (fairseq's ``lrdrop_fairseq``, Hugging Face's
``lrdrop_hf``) shares, importing nothing but torch.

- :mod:`lrdrop.consistency`: the loss math (output KL, hidden-state and attention consistency,
  per-sentence weighting, the recompute path of large attention maps), pure tensor functions;
- :mod:`lrdrop.records`: the model-criterion contract (what a model records in a forward);
- :mod:`lrdrop.options`: the consistency options, one meaning and one check for each, the
  weight ramp and the weighted sum.
"""

__version__ = "0.1.0"
