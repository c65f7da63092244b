"""Quantisers beside the VQ codebook: finite scalar, residual and lookup-free quantisation.

Each cuts the code's last axis into vectors, as `bottlenecks.VectorQuantizer` does, replaces
each by an entry of a codebook (learnt or implied), passes the gradient straight through
(z = h + sg(q - h)), and gives each vector an index, so their codes are `indexed_codes`:

- `FiniteScalarQuantizer`: each dimension bounded and rounded to a few levels, no codebook to
  learn and no loss term ("Finite Scalar Quantization: VQ-VAE Made Simple", Mentzer et al.);
- `ResidualVectorQuantizer`: quantisers in sequence, each on what the ones before it left
  ("SoundStream: An End-to-End Neural Audio Codec", Zeghidour et al.);
- `LookupFreeQuantizer`: each dimension to its sign, with an entropy term that spreads the codes
  over the implied codebook ("Language Model Beats Diffusion: Tokenizer is Key to Visual
  Generation", Yu et al.).

Each logs its codebook's usage over the batch: `perplexity` (exp of its entries' entropy) and,
for the implied codebooks, `usage` (the fraction of entries used).
"""

import math
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aejax.models import codebooks
from aejax.models.bottlenecks import (
    Bottleneck,
    Encoding,
    no_samples,
    perplexity,
    straight_through,
)
from aejax.models.codebooks import nearest

FSQ_EPS = 1e-3  # the bound's margin: tanh never reaches the outermost level's rounding edge
# LFQ's entropy term enumerates its codebook, 2^code_dim entries for each vector: 4096 at most
LFQ_MAX_BITS = 12


def usage_stats(indices: jax.Array, num_codes: int) -> dict[str, jax.Array]:
    """The batch's `perplexity` over `num_codes` entries and the fraction of them it used;
    counted without a one-hot, which for FSQ's thousand entries would be large."""
    counts_K = jnp.bincount(indices.ravel(), length=num_codes)
    return {
        "perplexity": perplexity(counts_K / indices.size),
        "usage": jnp.mean(counts_K > 0),
    }


def _vectors(h: jax.Array, size: int, what: str) -> jax.Array:
    """h's last axis cut into vectors [N, size]."""
    if h.shape[-1] % size:
        raise ValueError(
            f"the encoder's last axis ({h.shape[-1]}) is not a multiple of {what}={size}: the "
            "code is cut into vectors of that size along it"
        )
    return h.reshape(-1, size)


class FiniteScalarQuantizer(Bottleneck):
    """Each dimension i of a vector of len(levels) bounded to L_i values by a half-width tanh
    (shifted by half a step where L_i is even, so 0 stays a level) and rounded: the codes are
    the grid of prod(levels) points in [-1, 1]^d, the index a vector's mixed-radix number.

    With eps = 1e-3, half = (L - 1)(1 - eps) / 2, offset = 0.5 for even L (else 0):
    bound(z) = half tanh(z + tan(offset / half)) - offset, then round, divided by L // 2: the
    paper's listing. Its shift tan(offset / half) is near arctanh(offset / half), which would
    make bound(0) = 0 exactly, and unlike it is finite for L = 2 (offset / half > 1).
    """

    levels: Sequence[int] = (8, 5, 5, 5)
    indexed_codes: ClassVar[bool] = True

    @property
    def num_codes(self) -> int:
        return math.prod(self.levels)

    @property
    def code_dim(self) -> int:
        return len(self.levels)

    def _constants(self):
        levels = np.asarray(self.levels, np.float32)
        half = (levels - 1) * (1 - FSQ_EPS) / 2
        offset = np.where(levels % 2 == 1, 0.0, 0.5).astype(np.float32)
        basis = np.cumprod([1, *self.levels[:-1]]).astype(np.int32)
        return half, offset, levels // 2, basis

    def bound(self, z: jax.Array) -> jax.Array:
        """Each dimension into (-L/2, L/2) about its levels, before rounding."""
        half, offset, _, _ = self._constants()
        return half * jnp.tanh(z + np.tan(offset / half)) - offset

    def _quantise(self, h: jax.Array):
        vectors_NxD = _vectors(h, self.code_dim, "len(model.fsq_levels)")
        _, _, half_width, basis = self._constants()
        bounded = self.bound(vectors_NxD)
        codes_NxD = straight_through(bounded, jnp.round(bounded)) / half_width
        digits = jnp.round(bounded).astype(jnp.int32) + half_width.astype(np.int32)
        return codes_NxD, digits @ basis

    def vectors(self, indices: jax.Array) -> jax.Array:
        """The grid points of `indices` [..., len(levels)]."""
        _, _, half_width, basis = self._constants()
        digits = (indices[..., None] // basis) % np.asarray(self.levels)
        return (digits - half_width) / half_width

    def encode(self, h: jax.Array) -> Encoding:
        codes_NxD, indices_N = self._quantise(h)
        return Encoding(code=codes_NxD.reshape(h.shape), indices=indices_N.reshape(h.shape[0], -1))

    def __call__(self, h: jax.Array, *, train: bool = False, samples: int | None = None):
        del train
        no_samples(samples)
        codes_NxD, indices_N = self._quantise(h)
        z = codes_NxD.reshape(h.shape)
        aux = {"code": z, "indices": indices_N.reshape(h.shape[0], -1)}
        return z, {**aux, "terms": {}, "stats": usage_stats(indices_N, self.num_codes)}


class ResidualVectorQuantizer(Bottleneck):
    """`depth` vector quantisers in sequence: level l quantises the residual h - q_1 - ... -
    q_(l-1) with a codebook of its own, and the code is q_1 + ... + q_depth. Each level's
    terms are VectorQuantizer's (commitment |r_l - sg(q_l)|^2, codebook |sg(r_l) - q_l|^2),
    summed over levels; the residuals carry no gradient to earlier codebooks. The parameter
    `codebook` is [depth, num_codes, code_dim]; an index per vector and level, [B, N, depth].
    Logged: `perplexity` (the first level's), `perplexity2`, ... (the later levels'). With
    `rotation`, the gradient reaches h by the rotation trick from h to the summed code.
    """

    num_codes: int = 64
    code_dim: int = 4
    depth: int = 4
    rotation: bool = False
    indexed_codes: ClassVar[bool] = True

    def setup(self):
        init = nn.initializers.variance_scaling(1.0, "fan_out", "uniform", batch_axis=(0,))
        shape = (self.depth, self.num_codes, self.code_dim)
        self.codebook = self.param("codebook", init, shape)

    def _quantise(self, h: jax.Array):
        """The vectors [N, D], each level's indices [N, depth] and quantised residuals."""
        vectors_NxD = _vectors(h, self.code_dim, "model.code_dim")
        residual, indices, quantised = vectors_NxD, [], []
        for level in range(self.depth):
            index_N = nearest(jax.lax.stop_gradient(residual), self.codebook[level])
            indices.append(index_N)
            quantised.append(self.codebook[level][index_N])
            residual = residual - jax.lax.stop_gradient(quantised[-1])
        return vectors_NxD, jnp.stack(indices, axis=-1), quantised

    def vectors(self, indices: jax.Array) -> jax.Array:
        """The code vectors of `indices` [..., depth]: their levels' entries summed."""
        return sum(self.codebook[level][indices[..., level]] for level in range(self.depth))

    def encode(self, h: jax.Array) -> Encoding:
        _, indices_NxL, quantised = self._quantise(h)
        code = sum(quantised).reshape(h.shape)
        return Encoding(code=code, indices=indices_NxL.reshape(h.shape[0], -1, self.depth))

    def __call__(self, h: jax.Array, *, train: bool = False, samples: int | None = None):
        del train
        no_samples(samples)
        vectors_NxD, indices_NxL, quantised = self._quantise(h)
        sg, images = jax.lax.stop_gradient, h.shape[0]
        residual, commitment, codebook, stats = vectors_NxD, 0.0, 0.0, {}
        for level, q_NxD in enumerate(quantised):
            commitment += jnp.sum(jnp.square(residual - sg(q_NxD))) / images
            codebook += jnp.sum(jnp.square(sg(residual) - q_NxD)) / images
            residual = residual - sg(q_NxD)
            counts_K = jnp.bincount(indices_NxL[:, level], length=self.num_codes)
            stats[f"perplexity{level + 1 if level else ''}"] = perplexity(counts_K / len(q_NxD))
        past = codebooks.rotation_trick if self.rotation else straight_through
        z = past(vectors_NxD, sum(quantised)).reshape(h.shape)
        aux = {"code": z, "indices": indices_NxL.reshape(images, -1, self.depth)}
        terms = {"commitment": commitment, "codebook": codebook}
        return z, {**aux, "terms": terms, "stats": stats}


def binary_entropy(logits: jax.Array) -> jax.Array:
    """The entropy in nats of a bit that is 1 with probability sigmoid(logits)."""
    p = jax.nn.sigmoid(logits)
    return -(p * jax.nn.log_sigmoid(logits) + (1 - p) * jax.nn.log_sigmoid(-logits))


class LookupFreeQuantizer(Bottleneck):
    """Each dimension of a vector of `code_dim` to its sign, +-1: the implied codebook is
    {-1, 1}^code_dim, and a vector's index the number its bits (1 where positive) write,
    the first dimension the lowest bit.

    Terms, per image (summed over its vectors): "commitment" |h - sg(q)|^2 (weighted by
    loss.commitment_weight) and the entropy penalty, from the soft assignment
    q(c | h) = softmax_c(-|h - c|^2 / temperature), which factorises into a bit per dimension,
    1 with probability sigmoid(4 h_i / temperature): "entropy", the mean entropy of q(c | h)
    (weighted by loss.entropy_weight), which makes each vector's code certain, and "diversity",
    log K - H(the batch's mean q), K = 2^code_dim (weighted by loss.diversity_weight), which
    spreads the batch over the codebook. The paper's penalty is entropy - diversity up to the
    constant log K, so that "diversity" is 0 at a uniform use of the codebook.
    """

    code_dim: int = 8
    temperature: float = 0.1
    indexed_codes: ClassVar[bool] = True

    @property
    def num_codes(self) -> int:
        return 2**self.code_dim

    def vectors(self, indices: jax.Array) -> jax.Array:
        """The +-1 vectors of `indices` [..., code_dim]."""
        bits = (indices[..., None] >> np.arange(self.code_dim)) & 1
        return 2.0 * bits - 1.0

    def _quantise(self, h: jax.Array):
        vectors_NxD = _vectors(h, self.code_dim, "model.code_dim")
        positive = vectors_NxD > 0
        indices_N = positive.astype(jnp.int32) @ (2 ** np.arange(self.code_dim, dtype=np.int32))
        return vectors_NxD, jnp.where(positive, 1.0, -1.0).astype(h.dtype), indices_N

    def encode(self, h: jax.Array) -> Encoding:
        _, signs_NxD, indices_N = self._quantise(h)
        return Encoding(code=signs_NxD.reshape(h.shape), indices=indices_N.reshape(h.shape[0], -1))

    def entropies(self, vectors_NxD: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The mean entropy of q(c | h) over the vectors, and that of their mean q(c)."""
        logits_NxD = 4.0 * vectors_NxD / self.temperature
        per_vector = jnp.mean(jnp.sum(binary_entropy(logits_NxD), axis=-1))
        bits_KxD = self.vectors(jnp.arange(self.num_codes)) > 0
        log_q_NxK = (
            jax.nn.log_sigmoid(logits_NxD) @ bits_KxD.T.astype(logits_NxD.dtype)
            + jax.nn.log_sigmoid(-logits_NxD) @ (~bits_KxD).T.astype(logits_NxD.dtype)
        )
        log_mean_K = jax.nn.logsumexp(log_q_NxK, axis=0) - jnp.log(len(vectors_NxD))
        return per_vector, -jnp.sum(jnp.exp(log_mean_K) * log_mean_K)

    def __call__(self, h: jax.Array, *, train: bool = False, samples: int | None = None):
        del train
        no_samples(samples)
        vectors_NxD, signs_NxD, indices_N = self._quantise(h)
        per_image = len(vectors_NxD) / h.shape[0]  # vectors in an image
        per_vector, codebook_entropy = self.entropies(vectors_NxD)
        sq = jnp.square(vectors_NxD - jax.lax.stop_gradient(signs_NxD))
        terms = {
            "commitment": jnp.sum(sq) / h.shape[0],
            "entropy": per_image * per_vector,
            "diversity": per_image * (self.code_dim * np.log(2.0) - codebook_entropy),
        }
        z = straight_through(vectors_NxD, signs_NxD).reshape(h.shape)
        aux = {"code": z, "indices": indices_N.reshape(h.shape[0], -1)}
        return z, {**aux, "terms": terms, "stats": usage_stats(indices_N, self.num_codes)}
