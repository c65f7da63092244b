"""A learned prior over a VQ-VAE's codes, to sample from it: a small causal transformer.

A VQ-VAE's code is a grid of codebook indices (7x7 for the vqvae config); read in raster order
it is a sequence c_1..c_N, and the prior is p(c) = prod_i p(c_i | c_<i), each factor a softmax
over the codebook from a transformer whose attention is causally masked. `CodePrior` wraps the
trained VQ-VAE (its parameters taken from the run `train.init_from` names, and frozen:
`opt.trainable=("prior",)`) and the transformer; its loss is the negative log-likelihood of
the codes of the batch's images, which the frozen encoder computes inside the step, so the prior
trains in the one train loop, on the run's own data. Samples are drawn ancestrally, code by
code, and decoded by the VQ-VAE's decoder.
"""

import math
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax import compiled
from aejax.models.capabilities import Capabilities


class CausalTransformer(nn.Module):
    """Logits [B, N, K] of code i given codes 0..i-1 of codes [B, N]: the input is shifted right
    behind a start token (index K), and each position attends to itself and those before it."""

    num_codes: int  # K
    length: int  # N, the codes per image
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4

    @nn.compact
    def __call__(self, codes_BxN: jax.Array) -> jax.Array:
        b, n = codes_BxN.shape
        start_Bx1 = jnp.full((b, 1), self.num_codes, codes_BxN.dtype)
        inputs_BxN = jnp.concatenate([start_Bx1, codes_BxN[:, :-1]], axis=1)
        positions = self.param(
            "positions", nn.initializers.normal(0.02), (self.length, self.embed_dim)
        )
        h = nn.Embed(self.num_codes + 1, self.embed_dim, name="embed")(inputs_BxN) + positions[:n]
        mask = nn.make_causal_mask(inputs_BxN)  # [B, 1, N, N]: position i sees 0..i
        for i in range(self.num_layers):
            attention = nn.MultiHeadDotProductAttention(
                self.num_heads, deterministic=True, name=f"attention{i}"
            )
            h = h + attention(nn.LayerNorm(name=f"norm{i}a")(h), mask=mask)
            m = nn.LayerNorm(name=f"norm{i}b")(h)
            m = nn.gelu(nn.Dense(4 * self.embed_dim, name=f"mlp{i}a")(m))
            h = h + nn.Dense(self.embed_dim, name=f"mlp{i}b")(m)
        return nn.Dense(self.num_codes, name="logits")(nn.LayerNorm(name="norm")(h))


class CodePrior(nn.Module):
    """A VQ-VAE (`autoencoder`, under "autoencoder") and the transformer over its codes (under
    "prior"). Called on images, it gives the prior's logits of their codes and the codes."""

    autoencoder: nn.Module  # a models.Autoencoder with a vector-quantised bottleneck
    code_shape: Sequence[int]  # the encoder's output for one image, e.g. (7, 7, 16)
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    capabilities: ClassVar[Capabilities] = Capabilities(learned_prior=True)

    @property
    def length(self) -> int:
        """The codes per image: the encoder's output cut into vectors of code_dim."""
        return math.prod(self.code_shape) // self.autoencoder.bottleneck.code_dim

    def setup(self):
        self.prior = CausalTransformer(
            self.autoencoder.bottleneck.num_codes,
            self.length,
            self.embed_dim,
            self.num_layers,
            self.num_heads,
        )

    def codes(self, x: jax.Array) -> jax.Array:
        """The codebook indices [B, N] of images x, in raster order (no gradient)."""
        return jax.lax.stop_gradient(self.autoencoder.encode(x).indices)

    def code_logits(self, codes_BxN: jax.Array) -> jax.Array:
        return self.prior(codes_BxN)

    def decode(self, codes_BxN: jax.Array) -> jax.Array:
        """The decoder's logits of the images whose codes are `codes_BxN` (the prior's draws)."""
        return self.autoencoder.decode_indices(codes_BxN, tuple(self.code_shape))

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train
        codes_BxN = self.codes(x)
        if self.is_initializing():  # the decoder's parameters exist, to be taken from the run
            self.decode(codes_BxN)
        return self.prior(codes_BxN), {"codes": codes_BxN}


def sample_codes(model: CodePrior, params, rng: jax.Array, n: int) -> jax.Array:
    """`n` codes [n, N] drawn ancestrally: code i from p(c_i | the codes drawn before it), its
    key `fold_in(rng, i)`. Each draw reruns the transformer on the whole sequence, whose causal
    mask keeps the codes not yet drawn (zeros) out of it."""

    def draw(i, codes_BxN):
        logits_BxK = model.apply({"params": params}, codes_BxN, method="code_logits")[:, i]
        code_B = jax.random.categorical(jax.random.fold_in(rng, i), logits_BxK)
        return codes_BxN.at[:, i].set(code_B.astype(codes_BxN.dtype))

    start = jnp.zeros((n, model.length), jnp.int32)
    return compiled.jit(lambda: jax.lax.fori_loop(0, model.length, draw, start))()


