"""Posteriors past a diagonal gaussian, and a prior past N(0, I), for the gaussian bottleneck.

- Normalising flows on the posterior's draw: z_L = f_L(... f_1(z_0)), whose density is
  log q(z_L | x) = log N(z_0; mu, sigma) - sum_l log |det df_l / dz|. Planar steps ("Variational
  Inference with Normalizing Flows", Rezende and Mohamed, 2015) and inverse autoregressive ones
  ("Improved Variational Inference with Inverse Autoregressive Flow", Kingma et al., 2016), their
  parameters shared by every image, as Pythae's VAE_LinNF and VAE_IAF have them.
- The VampPrior ("VAE with a VampPrior", Tomczak and Welling, 2018): p(z) = (1/C) sum_c
  q(z | u_c), the mixture of the encoder's posteriors of C learned pseudo-inputs u_c.
- Tempered leapfrog steps ("Hamiltonian Variational Auto-Encoder", Caterini et al., 2018): the
  draw and a gaussian momentum moved along the Hamiltonian of -log p(x, z), which the
  `Autoencoder` holding the decoder supplies as a gradient.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

FLOWS = ("none", "planar", "iaf")
PRIORS = ("normal", "vamp")
IAF_GATE_BIAS = 2.0  # sigmoid(s + 2) = 0.88: each IAF step starts near the identity (Kingma et al.)
PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = 0.05, 0.01  # the VampPrior authors' start for MNIST


def diagonal_log_density(z: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; mu, exp(logvar)) summed over the last axis."""
    return jnp.sum(jax.scipy.stats.norm.logpdf(z, mu, jnp.exp(0.5 * logvar)), axis=-1)


def standard_log_density(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) summed over the last axis."""
    return jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1)


def tempered_leapfrog(gradient, z0, gamma, step_size, beta0, steps: int):
    """`steps` = K leapfrog steps of H(z, rho) = U(z) + |rho|^2 / 2 from z0 and the momentum
    rho_0 = gamma / sqrt(beta0), rho scaled after step k by sqrt(beta_{k-1} / beta_k) on
    Caterini et al.'s quadratic schedule 1 / sqrt(beta_k) = 1 + (1 / sqrt(beta0) - 1)
    (1 - (k / K)^2), so beta_K = 1 and the scalings multiply to sqrt(beta0).

    `gradient(z) -> (dU/dz, aux)`; returns z_K, rho_K and the aux of z_K (its logits).
    """
    inv_sqrt_beta0 = 1.0 / jnp.sqrt(beta0)

    def sqrt_beta(k):
        return 1.0 / (1.0 + (inv_sqrt_beta0 - 1.0) * (1.0 - (k / steps) ** 2))

    z, rho = z0, gamma * inv_sqrt_beta0
    g, aux = gradient(z)
    for k in range(1, steps + 1):
        rho = rho - 0.5 * step_size * g
        z = z + step_size * rho
        g, aux = gradient(z)
        rho = (rho - 0.5 * step_size * g) * (sqrt_beta(k - 1) / sqrt_beta(k))
    return z, rho, aux


def mixture_log_density(z: jax.Array, mu_CxK: jax.Array, logvar_CxK: jax.Array) -> jax.Array:
    """log (1/C) sum_c N(z; mu_c, exp(logvar_c)) for codes z [..., K]: shape [...]. The squares
    expand into matrix products, so no [..., C, K] array is made."""
    precision_CxK = jnp.exp(-logvar_CxK)
    quadratic = (
        jnp.square(z) @ precision_CxK.T
        - 2 * z @ (mu_CxK * precision_CxK).T
        + jnp.sum(jnp.square(mu_CxK) * precision_CxK, axis=-1)
    )
    constant = jnp.sum(logvar_CxK, axis=-1) + z.shape[-1] * math.log(2 * math.pi)
    log_normal = -0.5 * (quadratic + constant)
    return jax.nn.logsumexp(log_normal, axis=-1) - math.log(mu_CxK.shape[0])


class Planar(nn.Module):
    """f(z) = z + u' tanh(w.z + b), u' the u that keeps w.u' >= -1 so that f is invertible;
    log |det| = log |1 + (1 - tanh^2(w.z + b)) w.u'|."""

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        k = z.shape[-1]
        u = self.param("u", nn.initializers.normal(0.1), (k,))
        w = self.param("w", nn.initializers.normal(0.1), (k,))
        b = self.param("b", nn.initializers.zeros, ())
        wu = w @ u
        u_hat = u + (nn.softplus(wu) - 1.0 - wu) * w / jnp.sum(jnp.square(w))
        a = jnp.tanh(z @ w + b)
        log_det = jnp.log(jnp.abs(1.0 + (1.0 - jnp.square(a)) * (w @ u_hat)) + 1e-8)
        return z + a[..., None] * u_hat, log_det


def made_masks(k: int, widths: Sequence[int], reverse: bool) -> list[np.ndarray]:
    """The masks of MADE ("MADE: Masked Autoencoder for Distribution Estimation", Germain et al.,
    2015) for k inputs, hidden layers of `widths` and k outputs: output i reads inputs before i
    in the order (reversed with `reverse`), so the Jacobian of an IAF step is triangular."""
    degrees = np.arange(1, k + 1)[::-1] if reverse else np.arange(1, k + 1)
    masks, previous = [], degrees
    for width in widths:
        hidden = np.arange(width) % max(k - 1, 1) + 1
        masks.append((hidden[None] >= previous[:, None]).astype(np.float32))
        previous = hidden
    masks.append((degrees[None] > previous[:, None]).astype(np.float32))
    return masks


class InverseAutoregressive(nn.Module):
    """z' = sigma z + (1 - sigma) m, with m and s = logit(sigma) autoregressive in z (a MADE),
    Kingma et al.'s numerically stable step; log |det| = sum log sigma."""

    widths: Sequence[int] = (128, 128)
    reverse: bool = False  # every other step reverses the order, so that each latent moves

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        masks = made_masks(z.shape[-1], self.widths, self.reverse)
        h = z
        for i, (width, mask) in enumerate(zip(self.widths, masks)):
            kernel = self.param(f"kernel{i}", nn.initializers.lecun_normal(), mask.shape)
            bias = self.param(f"bias{i}", nn.initializers.zeros, (width,))
            h = nn.relu(h @ (kernel * mask) + bias)
        out = []
        for name in ("m", "s"):
            kernel = self.param(f"kernel_{name}", nn.initializers.lecun_normal(), masks[-1].shape)
            bias = self.param(f"bias_{name}", nn.initializers.zeros, (z.shape[-1],))
            out.append(h @ (kernel * masks[-1]) + bias)
        m, s = out
        sigma = nn.sigmoid(s + IAF_GATE_BIAS)
        return sigma * z + (1 - sigma) * m, jnp.sum(nn.log_sigmoid(s + IAF_GATE_BIAS), axis=-1)


class Flow(nn.Module):
    """`layers` steps of `kind` ("planar", "iaf") in sequence: the flowed code and the sum of
    the steps' log |det|."""

    kind: str
    layers: int

    def setup(self):
        if self.kind == "planar":
            self.steps = [Planar() for _ in range(self.layers)]
        else:
            self.steps = [InverseAutoregressive(reverse=i % 2 == 1) for i in range(self.layers)]

    def __call__(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_det = jnp.zeros(z.shape[:-1], z.dtype)
        for step in self.steps:
            z, step_log_det = step(z)
            log_det = log_det + step_log_det
        return z, log_det


class PseudoInputs(nn.Module):
    """A VampPrior's C pseudo-inputs, images in [0, 1] (clipped: the authors' hardtanh)."""

    count: int
    image_shape: Sequence[int]

    @nn.compact
    def __call__(self) -> jax.Array:
        def init(rng, shape):
            return PSEUDO_INPUT_MEAN + PSEUDO_INPUT_STD * jax.random.normal(rng, shape)

        return jnp.clip(self.param("inputs", init, (self.count, *self.image_shape)), 0.0, 1.0)
