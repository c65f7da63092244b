"""Autoencoder modules: an encoder, a decoder, and the glue that makes them an AE or a VAE.

Every model maps images `x_BxHxWxC` in [0, 1] to decoder logits of the same shape and a dict
of named intermediates (`code`, or `mu`, `logvar`, `z` for a VAE); losses read what they need
from that dict, so a new autoencoder is a new combination rather than a new class.
"""

from collections.abc import Callable, Sequence
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "elu": nn.elu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "linear": lambda x: x,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Looks up an activation by name, with an error that lists the known ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers; `activation` between them, `final_activation` after the last."""

    widths: Sequence[int]
    activation: str = "relu"
    final_activation: str = "linear"

    @nn.compact
    def __call__(self, h_BxD: jax.Array) -> jax.Array:
        hidden, final = activation(self.activation), activation(self.final_activation)
        for i, width in enumerate(self.widths):
            h_BxD = nn.Dense(width, name=f"dense{i}")(h_BxD)
            h_BxD = hidden(h_BxD) if i < len(self.widths) - 1 else final(h_BxD)
        return h_BxD


class MLPEncoder(nn.Module):
    """Flattens an image batch and maps it through an MLP to a code."""

    widths: Sequence[int]  # hidden widths then the code width, e.g. (500, 500, 20)
    activation: str = "relu"
    code_activation: str = "linear"

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        x_BxD = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        return MLP(self.widths, self.activation, self.code_activation, name="mlp")(x_BxD)


class MLPDecoder(nn.Module):
    """Maps a code through an MLP to per-pixel logits of image shape."""

    widths: Sequence[int]  # hidden widths; the output layer (prod(image_shape)) is added
    image_shape: Sequence[int] = (28, 28, 1)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z_BxK: jax.Array) -> jax.Array:
        widths = (*self.widths, math.prod(self.image_shape))
        logits_BxD = MLP(widths, self.activation, "linear", name="mlp")(z_BxK)
        return logits_BxD.reshape(z_BxK.shape[0], *self.image_shape)


class Autoencoder(nn.Module):
    """A deterministic autoencoder: logits = decode(encode(x))."""

    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def decode(self, code: jax.Array) -> jax.Array:
        return self.decoder(code)

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train  # no stochastic parts; kept so every model is called the same way
        code = self.encode(x)
        return self.decode(code), {"code": code}


class VAE(nn.Module):
    """A VAE with a diagonal gaussian posterior and a standard normal prior.

    The encoder gives features; two dense heads give the posterior mean and log-variance
    (log-variance keeps the variance positive without a constraint). At evaluation the
    decoder still sees a sample, so the reported ELBO is an unbiased single-sample estimate.
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_dim: int

    def setup(self):
        self.mu_head = nn.Dense(self.latent_dim)
        self.logvar_head = nn.Dense(self.latent_dim)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = self.encoder(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z_BxK: jax.Array) -> jax.Array:
        return self.decoder(z_BxK)

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train
        mu, logvar = self.encode(x)
        eps = jax.random.normal(self.make_rng("noise"), mu.shape, mu.dtype)
        z = mu + jnp.exp(0.5 * logvar) * eps  # reparameterisation: gradients flow to mu, logvar
        return self.decode(z), {"mu": mu, "logvar": logvar, "z": z}


def _mlp_ae(cfg: ml_collections.ConfigDict) -> nn.Module:
    encoder = MLPEncoder(cfg.encoder_widths, cfg.activation, cfg.code_activation)
    decoder_widths = tuple(reversed(cfg.encoder_widths[:-1]))
    decoder = MLPDecoder(decoder_widths, tuple(cfg.image_shape), cfg.activation)
    return Autoencoder(encoder, decoder)


def _mlp_vae(cfg: ml_collections.ConfigDict) -> nn.Module:
    # The encoder's last hidden layer keeps its activation: the heads are linear on top of it.
    encoder = MLPEncoder(cfg.encoder_widths, cfg.activation, cfg.activation)
    decoder = MLPDecoder(tuple(reversed(cfg.encoder_widths)), tuple(cfg.image_shape), cfg.activation)
    return VAE(encoder, decoder, cfg.latent_dim)


MODELS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    "mlp": _mlp_ae,
    "vae": _mlp_vae,
}


def build(cfg: ml_collections.ConfigDict) -> nn.Module:
    """Builds the model named by `cfg.name` from its config group."""
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}; registered models: {sorted(MODELS)}")
    return MODELS[cfg.name](cfg)
