"""Convolutional encoder and decoder for 28x28 images, to be paired by `models.Autoencoder`.

The encoder is 3x3 ReLU convolutions each followed by 2x2 max pooling ('SAME', so 7 -> 4): a
code of 4x4xC after three, 7x7xC after two. The nearest-upsampling decoder convolves then
doubles: from 4x4 it climbs 4 -> 8 -> 16, a VALID convolution trims 16 -> 14, the last doubling
gives 28 (from 7x7 it doubles twice, no trim). The resizing decoder (the TensorFlow tutorials')
resizes to the encoder's sides, 4 -> 7 -> 14 -> 28, before each convolution, so its last
convolution works at 28x28; the transposed-convolution decoder retraces those sides with
learned upsampling. Each ends in a 3x3 convolution to logits.
Pooling and nearest upsampling are reshapes: on XLA:CPU the reshape pooling trained faster than
`lax.reduce_window`. The convolutions are XLA's own: written as matmuls, the slowest layers ran
faster alone but whole training steps slower (`benchmarks/conv_layers.py`, README "Benchmarks").
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


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


def resize_nearest(x_BxHxWxC: jax.Array, side: int) -> jax.Array:
    """Nearest-neighbour resize to `side` x `side`: output row i is input row floor(i * H / side),
    the rule of TF1's `tf.image.resize_nearest_neighbor` (no half-pixel centres), so 4 -> 7
    repeats rows 0, 0, 1, 1, 2, 2, 3. A doubling is `upsample_2x`, the same rows."""
    h, w = x_BxHxWxC.shape[1:3]
    if (side, side) == (2 * h, 2 * w):
        return upsample_2x(x_BxHxWxC)
    rows, cols = (np.arange(side) * n // side for n in (h, w))
    return x_BxHxWxC[:, rows][:, :, cols]


def encoder_sides(image_size: int, layers: int) -> list[int]:
    """The sides after each 'SAME' 2x2 pooling, the image's first: 28, 3 -> [28, 14, 7, 4]."""
    sides = [image_size]
    for _ in range(layers):
        sides.append(-(-sides[-1] // 2))
    return sides


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

    Where the doublings overshoot `image_size` by 4, the last convolution before the final
    upsampling is VALID: 4 -> 8 -> 16 -> 14 -> 28. A 7x7 code doubles to 28 with none.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1
    image_size: int = 28

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array) -> jax.Array:
        overshoot = z_BxHxWxC.shape[1] * 2 ** len(self.features) - self.image_size
        if overshoot not in (0, 4):
            raise ValueError(
                f"a {z_BxHxWxC.shape[1]}x{z_BxHxWxC.shape[2]} code doubled {len(self.features)} "
                f"times does not come to {self.image_size}, nor to 4 more (one VALID trim)"
            )
        h = z_BxHxWxC
        for i, f in enumerate(self.features):
            padding = "VALID" if overshoot and i == len(self.features) - 1 else "SAME"
            h = upsample_2x(nn.relu(nn.Conv(f, (3, 3), padding=padding, name=f"conv{i}")(h)))
        return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)


class ResizeConvDecoder(nn.Module):
    """Nearest resize to the next encoder side, then conv3x3-relu, per entry of `features`;
    then a 3x3 convolution to logits: 4 -> 7 -> 14 -> 28, the last feature map at 28x28.

    The TensorFlow tutorials' decoder (`tf.image.resize_nearest_neighbor` before each
    `conv2d`); its parameters are those of a ConvDecoder with the same features.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1
    image_size: int = 28

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array) -> jax.Array:
        sides = encoder_sides(self.image_size, len(self.features))
        if z_BxHxWxC.shape[1] != sides[-1]:
            raise ValueError(f"code side {z_BxHxWxC.shape[1]} does not match the encoder's {sides}")
        h = z_BxHxWxC
        for i, f in enumerate(self.features):
            h = resize_nearest(h, sides[-2 - i])
            h = nn.relu(nn.Conv(f, (3, 3), padding="SAME", name=f"conv{i}")(h))
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
        sides = encoder_sides(self.image_size, len(self.features))
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
