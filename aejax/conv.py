"""Convolutional encoder and decoder for 28x28 images, to be paired by `models.Autoencoder`.

The encoder is 3x3 ReLU convolutions each followed by 2x2 max pooling ('SAME', so 7 -> 4): a
code of 4x4xC. The nearest-upsampling decoder climbs back 4 -> 8 -> 16, a VALID convolution
trims 16 -> 14, the last doubling gives 28; the transposed-convolution decoder retraces the
encoder's sides exactly, 4 -> 7 -> 14 -> 28. Either ends in a 3x3 convolution to logits.
Pooling and nearest upsampling are reshapes: on XLA:CPU the reshape pooling trained faster than
`lax.reduce_window`. The convolutions are XLA's own: written as matmuls, the slowest layers ran
faster alone but whole training steps slower (`benchmarks/conv_layers.py`, README "Benchmarks").
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def max_pool_2x2(x_BxHxWxC: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2; an odd side is padded with -inf first ('SAME')."""
    b, h, w, c = x_BxHxWxC.shape
    x = jnp.pad(x_BxHxWxC, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    return x.reshape(b, (h + 1) // 2, 2, (w + 1) // 2, 2, c).max(axis=(2, 4))


def upsample_2x(x_BxHxWxC: jax.Array) -> jax.Array:
    """Nearest-neighbour upsampling by 2 as a broadcast and a reshape."""
    b, h, w, c = x_BxHxWxC.shape
    x = jnp.broadcast_to(x_BxHxWxC[:, :, None, :, None, :], (b, h, 2, w, 2, c))
    return x.reshape(b, 2 * h, 2 * w, c)


class ConvEncoder(nn.Module):
    """conv3x3-relu-pool per entry of `features`: (16, 8, 8) gives a 4x4x8 code for 28x28."""

    features: Sequence[int] = (16, 8, 8)

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        h = x_BxHxWxC
        for i, f in enumerate(self.features):
            h = max_pool_2x2(nn.relu(nn.Conv(f, (3, 3), padding="SAME", name=f"conv{i}")(h)))
        return h


class ConvDecoder(nn.Module):
    """conv3x3-relu-upsample per entry of `features`, then a 3x3 convolution to logits.

    The last convolution before the final upsampling is VALID: 4 -> 8 -> 16 -> 14 -> 28.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array) -> jax.Array:
        h = z_BxHxWxC
        for i, f in enumerate(self.features):
            padding = "VALID" if i == len(self.features) - 1 else "SAME"
            h = upsample_2x(nn.relu(nn.Conv(f, (3, 3), padding=padding, name=f"conv{i}")(h)))
        return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)


class ConvTransposeDecoder(nn.Module):
    """A stride-2 3x3 transposed convolution and ReLU per entry of `features` (learned
    upsampling), then a 3x3 convolution to logits.

    Each layer's output side is the matching encoder side, `image_size` halved with rounding up
    (28 -> 14 -> 7 -> 4 read backwards), so odd sides such as 7 come back exactly.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1
    image_size: int = 28

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array) -> jax.Array:
        sides = [self.image_size]
        for _ in self.features:
            sides.append(-(-sides[-1] // 2))
        if z_BxHxWxC.shape[1] != sides[-1]:
            raise ValueError(f"code side {z_BxHxWxC.shape[1]} does not match the encoder's {sides}")
        h = z_BxHxWxC
        for i, f in enumerate(self.features):
            side_in, side_out = sides[-1 - i], sides[-2 - i]
            # A stride-2, size-3 transposed convolution gives 2 * side_in - 3 + (low + high).
            pad = side_out - 2 * side_in + 3
            padding = ((pad - pad // 2, pad // 2),) * 2
            h = nn.ConvTranspose(f, (3, 3), strides=(2, 2), padding=padding, name=f"deconv{i}")(h)
            h = nn.relu(h)
        return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)


class LatentConvDecoder(nn.Module):
    """A flat latent through a dense ReLU layer to a `code_shape` map, then a ConvDecoder: how a
    VAE's vector latent reaches the conv decoder."""

    features: Sequence[int] = (8, 8, 16)
    code_shape: Sequence[int] = (4, 4, 8)
    channels: int = 1

    @nn.compact
    def __call__(self, z_BxK: jax.Array) -> jax.Array:
        h = nn.relu(nn.Dense(math.prod(self.code_shape), name="project")(z_BxK))
        h_BxHxWxC = h.reshape(z_BxK.shape[0], *self.code_shape)
        return ConvDecoder(self.features, self.channels, name="conv")(h_BxHxWxC)
