"""The models: every one an `Autoencoder` of an encoder, a bottleneck and a decoder, chosen by
config, or a model that wraps one (a classifier on its code, a prior over its codes).

`factory.build(config.model)` makes the module a config describes; the parts live in
`mlp.py`, `conv.py` and `bottlenecks.py`, the wrappers in `classifier.py` and `code_prior.py`,
and `capabilities.py` says what a model can do.
"""
