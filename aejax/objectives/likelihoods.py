"""The likelihoods of an image given the decoder's logits, and the mean image each implies."""

import flax.linen as nn
import jax
import jax.numpy as jnp

LIKELIHOODS = ("bernoulli", "gaussian")


REDUCTIONS = ("mean", "sum")  # over pixels: per-pixel averages, or nats per image


def reconstruction(
    logits: jax.Array, x: jax.Array, likelihood: str, logvar: jax.Array | float | None = None
) -> jax.Array:
    """Per-pixel negative log-likelihood, same shape as x; a gaussian without `logvar` gives the
    squared error, not a density."""
    if likelihood == "bernoulli":
        # -log sigmoid(l) * x - log sigmoid(-l) * (1 - x), written with one exp and one log1p:
        # optax.sigmoid_binary_cross_entropy evaluates log-sigmoid twice, and summed over a
        # batch ran 3.8x slower on XLA:CPU in a one-off timing.
        return nn.relu(logits) - x * logits + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    if likelihood == "gaussian" and logvar is None:
        return jnp.square(logits - x)
    if likelihood == "gaussian":
        return 0.5 * (jnp.square(logits - x) * jnp.exp(-logvar) + logvar + jnp.log(2 * jnp.pi))
    raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {LIKELIHOODS}")


def mean_image(logits: jax.Array, likelihood: str) -> jax.Array:
    """The reconstruction a person looks at: the likelihood's mean."""
    return nn.sigmoid(logits) if likelihood == "bernoulli" else logits


def per_image(per_pixel: jax.Array) -> jax.Array:
    """Sums over the image axes, the last three: [..., H, W, C] -> [...]."""
    return jnp.sum(per_pixel, axis=(-3, -2, -1))
