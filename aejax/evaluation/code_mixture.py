"""A Gaussian mixture fitted to a trained run's codes: an ex-post sampler, so that any
autoencoder with a decoder generates, whatever prior (or none) it trained with.

"From Variational to Deterministic Autoencoders" (Ghosh et al., 2020) fits such a mixture to a
deterministic autoencoder's training codes after training and decodes its draws; Pythae offers
it for every model. Here it is fitted by EM with full covariances, compiled once
(`fit`), kept in the run's workdir beside the checkpoint it was fitted to (`save`, `load`), and
`aejax.Run.sample` draws from it when it is there.
"""

import dataclasses
import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from aejax import compiled

FILE = "code_mixture.npz"
COMPONENTS = 10  # Pythae's GaussianMixtureSampler default
ITERATIONS = 100  # EM steps; sklearn's GaussianMixture stops by then too (max_iter=100)
COVARIANCE_FLOOR = 1e-6  # added to each covariance's diagonal, as sklearn's reg_covar: a unit
# that never varies (a dead ReLU) leaves it invertible


@struct.dataclass
class GaussianMixture:
    """K full-covariance gaussians over codes of D units, their weights as logs."""

    log_weights_K: jax.Array
    means_KxD: jax.Array
    scale_tril_KxDxD: jax.Array  # each covariance's lower Cholesky factor

    def log_joint(self, x_NxD: jax.Array) -> jax.Array:
        """[N, K]: log pi_k + log N(x_n; mu_k, Sigma_k)."""
        diff_KxDxN = (x_NxD[None] - self.means_KxD[:, None]).transpose(0, 2, 1)
        whitened = jax.scipy.linalg.solve_triangular(self.scale_tril_KxDxD, diff_KxDxN, lower=True)
        diagonal_KxD = jnp.diagonal(self.scale_tril_KxDxD, axis1=1, axis2=2)
        log_det_K = 2 * jnp.sum(jnp.log(diagonal_KxD), axis=1)
        d = x_NxD.shape[1]
        log_normal_KxN = -0.5 * (d * math.log(2 * math.pi) + log_det_K[:, None])
        log_normal_KxN -= 0.5 * jnp.sum(jnp.square(whitened), axis=1)
        return (self.log_weights_K[:, None] + log_normal_KxN).T

    def log_prob(self, x_NxD: jax.Array) -> jax.Array:
        """[N]: the mixture's log density at each code."""
        return jax.nn.logsumexp(self.log_joint(x_NxD), axis=1)

    def sample(self, rng: jax.Array, n: int) -> jax.Array:
        """[n, D]: a component drawn by weight, then a draw of its gaussian."""
        pick, draw = jax.random.split(rng)
        k_N = jax.random.categorical(pick, self.log_weights_K, shape=(n,))
        eps_NxD = jax.random.normal(draw, (n, self.means_KxD.shape[1]))
        return self.means_KxD[k_N] + jnp.einsum("nij,nj->ni", self.scale_tril_KxDxD[k_N], eps_NxD)


def _m_step(x_NxD: jax.Array, resp_NxK: jax.Array) -> GaussianMixture:
    """The weights, means and covariances that maximise the expected log likelihood under the
    responsibilities `resp_NxK`."""
    counts_K = jnp.sum(resp_NxK, axis=0) + 1e-10  # a component no code chose keeps finite values
    means_KxD = resp_NxK.T @ x_NxD / counts_K[:, None]
    diff_KxNxD = x_NxD[None] - means_KxD[:, None]
    cov_KxDxD = jnp.einsum("nk,kni,knj->kij", resp_NxK, diff_KxNxD, diff_KxNxD)
    cov_KxDxD = cov_KxDxD / counts_K[:, None, None]
    cov_KxDxD += COVARIANCE_FLOOR * jnp.eye(x_NxD.shape[1])
    log_weights_K = jnp.log(counts_K / x_NxD.shape[0])
    return GaussianMixture(log_weights_K, means_KxD, jnp.linalg.cholesky(cov_KxDxD))


@compiled.jit(static_argnames=("components", "iterations"))
def fit(
    x_NxD: jax.Array, rng: jax.Array, components: int = COMPONENTS, iterations: int = ITERATIONS
) -> GaussianMixture:
    """EM from `components` distinct codes drawn by `rng` as means, each with the codes' own
    covariance and equal weight. Each step's likelihood never falls (EM's guarantee)."""
    first = jax.random.choice(rng, x_NxD.shape[0], (components,), replace=False)
    nearest_NxK = jax.nn.one_hot(
        jnp.argmin(jnp.sum(jnp.square(x_NxD[:, None] - x_NxD[first][None]), axis=-1), axis=1),
        components,
    )  # each code to its nearest starting mean: covariances and weights of that partition

    def step(_, mixture: GaussianMixture) -> GaussianMixture:
        log_joint_NxK = mixture.log_joint(x_NxD)
        resp_NxK = jnp.exp(log_joint_NxK - jax.nn.logsumexp(log_joint_NxK, axis=1, keepdims=True))
        return _m_step(x_NxD, resp_NxK)

    return jax.lax.fori_loop(0, iterations, step, _m_step(x_NxD, nearest_NxK))


def save(mixture: GaussianMixture, workdir: Path, meta: dict) -> None:
    """Writes `mixture` and `meta` (what it was fitted to) to `workdir`, whole or not at all."""
    path = Path(workdir) / FILE
    partial = path.with_name(f".{FILE}.partial")
    with open(partial, "wb") as f:
        arrays = {f.name: np.asarray(getattr(mixture, f.name)) for f in dataclasses.fields(mixture)}
        np.savez(f, meta=json.dumps(meta), **arrays)
    os.replace(partial, path)


def load(workdir: Path) -> tuple[GaussianMixture, dict] | None:
    """The mixture kept in `workdir` and what it was fitted to, or None if none was fitted."""
    path = Path(workdir) / FILE
    if not path.exists():
        return None
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        arrays = {k: jnp.asarray(saved[k]) for k in saved.files if k != "meta"}
    return GaussianMixture(**arrays), meta
