"""Objectives as pure functions of a model's outputs, and the factory that combines them.

Reconstruction terms work on decoder logits: a Bernoulli likelihood reads them through a
sigmoid (BCE, computed stably from logits), a fixed-variance gaussian reads them as the mean
(MSE). A model whose intermediates include a posterior (`mu`, `logvar`) also pays its KL to
the standard normal prior, which makes the objective the negative ELBO.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

LIKELIHOODS = ("bernoulli", "gaussian")
REDUCTIONS = ("mean", "sum")  # over pixels: per-pixel averages, or nats per image


def reconstruction(logits: jax.Array, x: jax.Array, likelihood: str) -> jax.Array:
    """Per-pixel negative log-likelihood (up to constants for the gaussian), same shape as x."""
    if likelihood == "bernoulli":
        return optax.sigmoid_binary_cross_entropy(logits, x)
    if likelihood == "gaussian":
        return jnp.square(logits - x)
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {LIKELIHOODS}")


def mean_image(logits: jax.Array, likelihood: str) -> jax.Array:
    """The reconstruction a person looks at: the likelihood's mean."""
    return nn.sigmoid(logits) if likelihood == "bernoulli" else logits


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over latents: shape [B]."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mu) - 1.0 - logvar, axis=-1)


LossFn = Callable[[dict, jax.Array, jax.Array, bool], tuple[jax.Array, dict]]


def make_loss_fn(model: nn.Module, cfg: ml_collections.ConfigDict) -> LossFn:
    """Returns `loss_fn(params, x, rng, train) -> (loss, metrics)` for `model` under `cfg`.

    `metrics` holds batch means of each term, so logging and evaluation read the same names.
    """
    if cfg.likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {cfg.likelihood!r}; choose one of {LIKELIHOODS}")
    if cfg.reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {cfg.reduction!r}; choose one of {REDUCTIONS}")
    reduce_pixels = jnp.mean if cfg.reduction == "mean" else jnp.sum

    def loss_fn(params, x, rng, train):
        logits, aux = model.apply({"params": params}, x, train=train, rngs={"noise": rng})
        recon_B = reduce_pixels(reconstruction(logits, x, cfg.likelihood), axis=(1, 2, 3))
        metrics = {"recon": jnp.mean(recon_B)}
        loss = metrics["recon"]
        if "mu" in aux:
            metrics["kl"] = jnp.mean(gaussian_kl(aux["mu"], aux["logvar"]))
            loss = loss + cfg.kl_weight * metrics["kl"]
        metrics["loss"] = loss
        return loss, metrics

    return loss_fn
