"""The objective of a learned prior over sequences of codes (a VQ-VAE's, or a sampler's binned
codes): their negative log-likelihood."""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import optax

from aejax.objectives import autoencoding


def make_loss_fn(model: nn.Module, cfg: ml_collections.ConfigDict) -> autoencoding.LossFn:
    """`loss_fn(params, x, rng, train, step=None)`: the negative log-likelihood of the codes of
    images `x` under the prior, in nats per code ("nll", also "loss")."""
    del cfg  # nothing to choose: the categorical likelihood of each code
    if not model.capabilities.code_sequences:
        raise ValueError(
            "loss.objective='code_prior' trains a prior over sequences of codes: it needs "
            "model.name='code_prior' (the shipped config vqvae_prior) or 'token_prior', not "
            f"{type(model).__name__}"
        )

    def loss_fn(params, x, rng, train, step=None):
        del rng, train, step  # deterministic, no schedule
        logits_BxNxK, aux = model.apply({"params": params}, x)
        nll = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxNxK, aux["codes"]))
        return nll, {"nll": nll, "loss": nll}

    return loss_fn
