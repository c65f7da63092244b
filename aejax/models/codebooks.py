"""What a learnt codebook (VQ, residual VQ) is made of: the nearest entry, k-means to start
from, the gradient past the quantiser, and restarts of entries that fell out of use.

- `kmeans`: Lloyd's algorithm from distinct vectors, the codebook's start when
  `model.codebook_init="kmeans"` (on the first training images' encodings, as "SoundStream: An
  End-to-End Neural Audio Codec", Zeghidour et al., 2021, starts on its first batch);
- `rotation_trick`: the quantised vector in the forward pass, the encoder's gradient the
  upstream one rotated and scaled from q onto h ("Restructuring Vector Quantization with the
  Rotation Trick", Fifty et al., 2024), beside the straight-through estimator;
- `normalised`: unit vectors, for codebooks compared by cosine similarity ("Vector-quantized
  Image Modeling with Improved VQGAN", Yu et al., 2022);
- `restarted`: entries unused for a number of steps moved onto vectors of the batch
  (SoundStream's replacement of codebook vectors unassigned for several batches).
"""

import jax
import jax.numpy as jnp

GRADIENTS = ("straight_through", "rotation")  # model.codebook_gradient
INITS = ("uniform", "kmeans")  # model.codebook_init
DISTANCES = ("euclidean", "cosine")  # model.codebook_distance
KMEANS_IMAGES = 1024  # the first training images whose encodings k-means clusters
KMEANS_ITERATIONS = 10
NORM_EPS = 1e-12  # under a squared norm: a zero vector stays zero and its gradient finite


def nearest(vectors_NxD: jax.Array, codebook_KxD: jax.Array) -> jax.Array:
    """The index [N] of each vector's nearest codebook entry, by squared distance."""
    d2_NxK = (
        jnp.sum(jnp.square(vectors_NxD), axis=1, keepdims=True)
        - 2 * vectors_NxD @ codebook_KxD.T
        + jnp.sum(jnp.square(codebook_KxD), axis=1)
    )
    return jnp.argmin(d2_NxK, axis=1)


def norm(v: jax.Array) -> jax.Array:
    """|v| along the last axis (kept), with a finite gradient at 0, where |v|'s is NaN."""
    return jnp.sqrt(jnp.sum(jnp.square(v), axis=-1, keepdims=True) + NORM_EPS)


def normalised(v: jax.Array) -> jax.Array:
    """v divided by its norm along the last axis."""
    return v / norm(v)


def kmeans(
    rng: jax.Array, vectors_NxD: jax.Array, num_codes: int, iterations: int = KMEANS_ITERATIONS
) -> jax.Array:
    """`num_codes` centroids [K, D] of `vectors_NxD` by Lloyd's algorithm, started at distinct
    vectors drawn by `rng` (drawn again where there are fewer vectors than centroids); a
    centroid that loses all its vectors stays where it was."""
    n = vectors_NxD.shape[0]
    start = jax.random.choice(rng, n, (num_codes,), replace=n < num_codes)

    def step(_, centroids_KxD):
        onehot_NxK = jax.nn.one_hot(nearest(vectors_NxD, centroids_KxD), num_codes)
        counts_K = jnp.sum(onehot_NxK, axis=0)
        sums_KxD = onehot_NxK.T @ vectors_NxD
        return jnp.where(counts_K[:, None] > 0, sums_KxD / jnp.maximum(counts_K, 1)[:, None],
                         centroids_KxD)  # fmt: skip

    return jax.lax.fori_loop(0, iterations, step, vectors_NxD[start])


def rotation_trick(h_NxD: jax.Array, q_NxD: jax.Array) -> jax.Array:
    """q_NxD, through which the gradient reaches h as a linear map would carry it: the rotation
    R taking h's direction to q's (about their common plane), scaled by |q| / |h|, both held
    constant. So an encoder output's gradient keeps its angle to the output, where the
    straight-through estimator copies it unchanged."""
    sg = jax.lax.stop_gradient
    h_norm, q_norm = sg(norm(h_NxD)), sg(norm(q_NxD))
    u, q_hat = sg(h_NxD / h_norm), sg(q_NxD / q_norm)
    r = normalised(u + q_hat)  # R = I - 2 r r^T + 2 q_hat u^T takes u to q_hat
    dot = lambda a, b: jnp.sum(a * b, axis=-1, keepdims=True)  # noqa: E731
    rotated = sg(q_norm / h_norm) * (h_NxD - 2 * r * dot(r, h_NxD) + 2 * q_hat * dot(u, h_NxD))
    return rotated + sg(q_NxD - rotated)  # exactly q forward; rounding off R h is not decoded


def restarted(
    rng: jax.Array, unused_K: jax.Array, vectors_NxD: jax.Array, after_steps: int
) -> tuple[jax.Array, jax.Array]:
    """(dead_K, replacements_KxD): the entries unused for `after_steps` steps or more, and for
    each entry a vector of the batch drawn by `rng` to restart it at."""
    rows = jax.random.randint(rng, unused_K.shape, 0, vectors_NxD.shape[0])
    return unused_K >= after_steps, vectors_NxD[rows]
