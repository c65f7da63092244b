"""The objectives by the name `loss.objective` gives them, and the one a config names."""

import ml_collections

from aejax.objectives import autoencoding, classification, layerwise, prior_nll

# What a run optimises, by `loss.objective`; each factory maps (model, loss config) to a LossFn.
OBJECTIVES = {
    "reconstruction": autoencoding.make_loss_fn,  # the default
    "classification": classification.make_loss_fn,  # batches are {"image", "label"}
    "layerwise": layerwise.make_layer_loss_fn,  # one phase of greedy pretraining
    "code_prior": prior_nll.make_loss_fn,  # a prior over a VQ-VAE's codes (model.name="code_prior")
}


def make_objective(model, cfg: ml_collections.ConfigDict) -> autoencoding.LossFn:
    """The loss `loss.objective` names, built for `model`."""
    if cfg.objective not in OBJECTIVES:
        raise ValueError(
            f"unknown loss.objective {cfg.objective!r}; choose one of {sorted(OBJECTIVES)}"
        )
    return OBJECTIVES[cfg.objective](model, cfg)
