"""A learned prior over a VQ-VAE's codes, to sample from it: a small causal transformer.

A VQ-VAE's code is a grid of codebook indices (7x7 for the vqvae config); read in raster order
it is a sequence c_1..c_N, and the prior is p(c) = prod_i p(c_i | c_<i), each factor a softmax
over the codebook from a transformer whose attention is causally masked. `CodePrior` wraps the
trained VQ-VAE (its parameters taken from the run `train.init_from` names, and frozen:
`opt.trainable=("prior",)`) and the transformer; its loss is the negative log-likelihood of
the codes of the batch's images, which the frozen encoder computes inside the step, so the prior
trains in the one train loop, on the run's own data. Samples are drawn ancestrally, code by
code, each step attending to the keys and values cached by the steps before it, and decoded by
the VQ-VAE's decoder.

`TokenPrior` is the same transformer over sequences given as data: the binned units of any
run's continuous codes (`evaluation/code_tokens.py`, an ex-post sampler).
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
    behind a start token (index K), and each position attends to itself and those before it.

    A clone with `decode=True` takes one position at a time: called with the code drawn at
    position `step` - 1 ([B, 1]; the start token at step 0), it gives the logits [B, 1, K] of
    position `step`, attending to the keys and values its "cache" collection kept from the
    steps before (flax's autoregressive cache), so drawing N codes costs N positions, not N^2.
    """

    num_codes: int  # K
    length: int  # N, the codes per image
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    decode: bool = False

    @nn.compact
    def __call__(self, codes_BxN: jax.Array, step: jax.Array | None = None) -> jax.Array:
        b, n = codes_BxN.shape
        positions = self.param(
            "positions", nn.initializers.normal(0.02), (self.length, self.embed_dim)
        )
        if self.decode and step is not None:
            inputs_BxN, mask = codes_BxN, None  # the cache masks the positions not yet drawn
            positions = jax.lax.dynamic_slice_in_dim(positions, step, 1)
        else:
            start_Bx1 = jnp.full((b, 1), self.num_codes, codes_BxN.dtype)
            inputs_BxN = jnp.concatenate([start_Bx1, codes_BxN[:, :-1]], axis=1)
            positions, mask = positions[:n], nn.make_causal_mask(inputs_BxN)  # i sees 0..i
        h = nn.Embed(self.num_codes + 1, self.embed_dim, name="embed")(inputs_BxN) + positions
        for i in range(self.num_layers):
            attention = nn.MultiHeadDotProductAttention(
                self.num_heads, deterministic=True, decode=self.decode, name=f"attention{i}"
            )
            h = h + attention(nn.LayerNorm(name=f"norm{i}a")(h), mask=mask)
            m = nn.LayerNorm(name=f"norm{i}b")(h)
            m = nn.gelu(nn.Dense(4 * self.embed_dim, name=f"mlp{i}a")(m))
            h = h + nn.Dense(self.embed_dim, name=f"mlp{i}b")(m)
        return nn.Dense(self.num_codes, name="logits")(nn.LayerNorm(name="norm")(h))


class TokenPrior(nn.Module):
    """The causal transformer over sequences of `length` tokens in [0, num_codes), given as
    float vectors [B, length] (the loop's data): its logits of each and the tokens."""

    num_codes: int
    length: int
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    capabilities: ClassVar[Capabilities] = Capabilities(code_sequences=True)

    @nn.nowrap
    def transformer(self) -> CausalTransformer:
        return CausalTransformer(
            self.num_codes, self.length, self.embed_dim, self.num_layers, self.num_heads
        )

    def setup(self):
        self.prior = self.transformer()

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train
        codes_BxN = x.astype(jnp.int32)
        return self.prior(codes_BxN), {"codes": codes_BxN}


class CodePrior(nn.Module):
    """A VQ-VAE (`autoencoder`, under "autoencoder") and the transformer over its codes (under
    "prior"). Called on images, it gives the prior's logits of their codes and the codes."""

    autoencoder: nn.Module  # a models.Autoencoder with a vector-quantised bottleneck
    code_shape: Sequence[int]  # the encoder's output for one image, e.g. (7, 7, 16)
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    capabilities: ClassVar[Capabilities] = Capabilities(learned_prior=True, code_sequences=True)

    @property
    def length(self) -> int:
        """The codes per image: the encoder's output cut into vectors of code_dim."""
        return math.prod(self.code_shape) // self.autoencoder.bottleneck.code_dim

    @nn.nowrap
    def transformer(self) -> CausalTransformer:
        return CausalTransformer(
            self.autoencoder.bottleneck.num_codes,
            self.length,
            self.embed_dim,
            self.num_layers,
            self.num_heads,
        )

    def setup(self):
        self.prior = self.transformer()

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


def sample_codes(model: nn.Module, params, rng: jax.Array, n: int) -> jax.Array:
    """`n` code sequences [n, N] drawn ancestrally from the transformer of `model` (a
    `CodePrior` or a `TokenPrior`, its parameters under "prior"): code i from p(c_i | the codes
    drawn before it), its key `fold_in(rng, i)`, one position a step through the cache."""
    cached = model.transformer().clone(decode=True)
    prior = {"params": params["prior"]}
    start_B = jnp.full((n,), cached.num_codes, jnp.int32)

    def draw(i, carry):
        cache, codes_BxN, previous_B = carry
        logits, updated = cached.apply(
            {**prior, "cache": cache}, previous_B[:, None], i, mutable=["cache"]
        )
        code_B = jax.random.categorical(jax.random.fold_in(rng, i), logits[:, 0])
        return updated["cache"], codes_BxN.at[:, i].set(code_B), code_B

    def run():
        empty = jnp.zeros((n, cached.length), jnp.int32)
        cache = cached.apply(prior, empty, mutable=["cache"])[1]["cache"]  # zeros, N long
        start = (cache, empty, start_B)
        return jax.lax.fori_loop(0, cached.length, draw, start)[1]

    return compiled.jit(run)()
