"""What a run optimises: pure loss functions `loss_fn(params, batch, rng, train, step=None)`.

`autoencoding.py` is the autoencoder's objective (the reconstruction's likelihood, the
bottleneck's terms, `regularizers.py`'s penalties, on inputs `corruptions.py` may corrupt);
`classification.py`, `layerwise.py` and `prior_nll.py` are the others `loss.objective` names.
`registry.make_objective` builds the one a config names.
"""
