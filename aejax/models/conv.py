"""Convolutional encoder and decoder for images of any side, paired by `models.Autoencoder`.

The encoder is 3x3 ReLU convolutions each followed by 2x2 max pooling ('SAME': each side is
halved rounding up, 28 -> 14 -> 7 -> 4, 32 -> 16 -> 8 -> 4). The nearest-upsampling decoder
doubles the code's side per layer; its last convolution trims what the doublings overshoot
(for 28: 4 -> 8 -> 16, a VALID convolution 16 -> 14, then 28), and a side still too large
after the last doubling (an odd one) is cropped. The resizing decoder (the TensorFlow
tutorials') resizes to the encoder's sides, 4 -> 7 -> 14 -> 28, before each convolution, so its
last convolution works at full size; the transposed-convolution decoder retraces those sides
with learned upsampling. Each ends in a 3x3 convolution to logits.
Pooling and nearest upsampling are reshapes: on XLA:CPU the reshape pooling trained faster than
`lax.reduce_window`. The convolutions are XLA's own: written as matmuls, the slowest layers ran
faster alone but whole training steps slower (`benchmarks/conv_layers.py`, docs/benchmarks.md).
"""

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

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


def resize_nearest(x_BxHxWxC: jax.Array, height: int, width: int) -> jax.Array:
    """Nearest-neighbour resize: output row i is input row floor(i * H / height), the rule of
    TF1's `tf.image.resize_nearest_neighbor` (no half-pixel centres), so 4 -> 7 repeats rows
    0, 0, 1, 1, 2, 2, 3. A doubling is `upsample_2x`, the same rows."""
    h, w = x_BxHxWxC.shape[1:3]
    if (height, width) == (2 * h, 2 * w):
        return upsample_2x(x_BxHxWxC)
    rows, cols = (np.arange(out) * n // out for n, out in ((h, height), (w, width)))
    return x_BxHxWxC[:, rows][:, :, cols]


def encoder_sides(side: int, layers: int) -> list[int]:
    """The sides of the encoder's maps, input first: each 'SAME' pooling halves, rounding up."""
    sides = [side]
    for _ in range(layers):
        sides.append(-(-sides[-1] // 2))
    return sides


def _trim_padding(side_in: int, side_out: int) -> tuple[int, int]:
    """Padding of a 3x3 convolution that takes `side_in` as near `side_out` as it can: 'SAME'
    (1, 1) keeps the side, (1, 0) trims one, 'VALID' (0, 0) two."""
    total = max(0, 2 - (side_in - side_out))
    return total - total // 2, total // 2


class ConvEncoder(nn.Module):
    """conv3x3-relu-pool per entry of `features`: (16, 8, 8) gives a 4x4x8 code for 28x28.
    The last layer's activation is `last_activation`: the identity lets a VQ code take any
    sign, as the VQ-VAE's linear pre-quantisation layer does."""

    features: Sequence[int] = (16, 8, 8)
    last_activation: Callable[[jax.Array], jax.Array] = nn.relu
    layer_kind: ClassVar[str] = "conv"  # greedy pretraining pairs its layers with a decoder's
    dense_widths: ClassVar[tuple] = ()  # its code is a map
    code_activation: ClassVar[None] = None  # its last is a function: no name tells its range

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array, layers: tuple[int, int] | None = None) -> jax.Array:
        """`layers=(first, stop)` applies only those layers (greedy pretraining, one a phase)."""
        first, stop = layers or (0, len(self.features))
        h = x_BxHxWxC
        for i in range(first, stop):
            conv = nn.Conv(self.features[i], (3, 3), padding="SAME", name=f"conv{i}")
            act = self.last_activation if i == len(self.features) - 1 else nn.relu
            h = max_pool_2x2(act(conv(h)))
        return h


class ConvDecoder(nn.Module):
    """conv3x3-relu-upsample per entry of `features`, then a 3x3 convolution to logits.

    The last convolution before the final upsampling trims its map towards half the image
    (28: 16 -> 14, VALID; 32: 16 -> 16, SAME); a remaining excess is cropped after it.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1
    image_hw: Sequence[int] = (28, 28)  # the output's height and width
    mirror: ClassVar[None] = None  # its maps do not retrace the encoder's sides

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array) -> jax.Array:
        h, last = z_BxHxWxC, len(self.features) - 1
        # The map's sides entering the last convolution, and half the image's (rounded up).
        sides_in = [side * 2**last for side in z_BxHxWxC.shape[1:3]]
        halves = [-(-side // 2) for side in self.image_hw]
        for i, f in enumerate(self.features):
            padding = [(1, 1)] * 2 if i < last else list(map(_trim_padding, sides_in, halves))
            h = upsample_2x(nn.relu(nn.Conv(f, (3, 3), padding=padding, name=f"conv{i}")(h)))
        h = h[:, : self.image_hw[0], : self.image_hw[1]]  # an odd side: one row or column over
        return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)


class ResizeConvDecoder(nn.Module):
    """Nearest resize to the next encoder side, then conv3x3-relu, per entry of `features`;
    then a 3x3 convolution to logits: 4 -> 7 -> 14 -> 28, the last feature map at 28x28.

    The decoder of Udacity's "Convolutional Autoencoder" notebook (TensorFlow 1,
    `tf.image.resize_nearest_neighbor` before each `conv2d`); its parameters are those of a
    ConvDecoder with the same features.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1
    image_hw: Sequence[int] = (28, 28)  # the output's height and width
    mirror: ClassVar[str] = "conv"  # its layer "convD-1-k" retraces a conv encoder's layer k

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array, layers: tuple[int, int] | None = None) -> jax.Array:
        """`layers=(first, stop)` applies only those layers, the logits only after the last
        (greedy pretraining): layer i takes encoder layer D-1-i's output to its input."""
        first, stop = layers or (0, len(self.features))
        heights, widths = (encoder_sides(side, len(self.features)) for side in self.image_hw)
        if tuple(z_BxHxWxC.shape[1:3]) != (heights[-1 - first], widths[-1 - first]):
            raise ValueError(
                f"code sides {z_BxHxWxC.shape[1:3]} do not match the encoder's {heights, widths}"
            )
        h = z_BxHxWxC
        for i in range(first, stop):
            h = resize_nearest(h, heights[-2 - i], widths[-2 - i])
            h = nn.relu(nn.Conv(self.features[i], (3, 3), padding="SAME", name=f"conv{i}")(h))
        if stop < len(self.features):
            return h
        return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)


class ConvTransposeDecoder(nn.Module):
    """A stride-2 3x3 transposed convolution and ReLU per entry of `features` (learned
    upsampling), then a 3x3 convolution to logits.

    Each layer's output side is the matching encoder side, the image's halved with rounding up
    (28 -> 14 -> 7 -> 4 read backwards), so odd sides such as 7 come back exactly.
    """

    features: Sequence[int] = (8, 8, 16)
    channels: int = 1
    image_hw: Sequence[int] = (28, 28)  # the output's height and width
    mirror: ClassVar[str] = "deconv"  # its layer "deconvD-1-k" retraces encoder layer k

    @nn.compact
    def __call__(self, z_BxHxWxC: jax.Array, layers: tuple[int, int] | None = None) -> jax.Array:
        """`layers=(first, stop)` applies only those layers, the logits only after the last
        (greedy pretraining): layer i takes encoder layer D-1-i's output to its input."""
        first, stop = layers or (0, len(self.features))
        sides = [encoder_sides(side, len(self.features)) for side in self.image_hw]
        if tuple(z_BxHxWxC.shape[1:3]) != (sides[0][-1 - first], sides[1][-1 - first]):
            raise ValueError(
                f"code sides {z_BxHxWxC.shape[1:3]} do not match the encoder's {sides}"
            )
        h = z_BxHxWxC
        for i in range(first, stop):
            f = self.features[i]
            padding = []
            for axis_sides in sides:
                side_in, side_out = axis_sides[-1 - i], axis_sides[-2 - i]
                # A stride-2, size-3 transposed convolution gives 2 * side_in - 3 + (low + high).
                pad = side_out - 2 * side_in + 3
                padding.append((pad - pad // 2, pad // 2))
            h = nn.ConvTranspose(f, (3, 3), strides=(2, 2), padding=padding, name=f"deconv{i}")(h)
            h = nn.relu(h)
        if stop < len(self.features):
            return h
        return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)


class ResNetEncoder(nn.Module):
    """A residual block per entry of `features`, then 2x2 max pooling: relu(conv3x3(relu(
    conv3x3(h))) + conv1x1(h)), the 1x1 convolution matching the block's width. Its maps have
    the ConvEncoder's sides, so every conv decoder pairs with it."""

    features: Sequence[int] = (16, 32, 32)
    layer_kind: ClassVar[None] = None  # a block of two convolutions mirrors no decoder layer
    dense_widths: ClassVar[tuple] = ()  # its code is a map
    code_activation: ClassVar[None] = None

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        h = x_BxHxWxC
        for i, f in enumerate(self.features):
            r = nn.relu(nn.Conv(f, (3, 3), padding="SAME", name=f"conv{i}a")(h))
            r = nn.Conv(f, (3, 3), padding="SAME", name=f"conv{i}b")(r)
            h = max_pool_2x2(nn.relu(r + nn.Conv(f, (1, 1), name=f"skip{i}")(h)))
        return h


# The conv decoders' ways back to the image: conv then double, trimming the overshoot (for 28:
# 4-8-16-14-28); nearest resize to the encoder's sides then conv (4-7-14-28, the TensorFlow
# tutorials'); stride-2 transposed convolutions (4-7-14-28).
DECODERS = {
    "nearest": ConvDecoder,
    "resize": ResizeConvDecoder,
    "transpose": ConvTransposeDecoder,
}
ENCODERS = ("conv", "resnet")  # the encoders of convolutions: ConvEncoder, ResNetEncoder

# What a run of any config needs once a convolutional part is chosen: XLA:CPU runs convolutions
# far slower inside the lax.scan of a compiled chunk of steps (the mlp config with a nearest
# decoder trained 23 samples/s in chunks of 400 and 1,256 a step at a time), so each step is its
# own compiled call.
DEFAULTS = {"train.chunk": 1}


def decoder_name(decoder: nn.Module) -> str | None:
    """The name in DECODERS of a conv decoder module; None for any other decoder."""
    return next((name for name, cls in DECODERS.items() if type(decoder) is cls), None)


class LatentConvDecoder(nn.Module):
    """A flat latent through a dense ReLU layer to a `code_shape` map, then a conv decoder
    (`upsampling`, one of DECODERS): how a vector code reaches the conv decoders."""

    features: Sequence[int] = (8, 8, 16)
    code_shape: Sequence[int] = (4, 4, 8)
    channels: int = 1
    image_hw: Sequence[int] = (28, 28)
    upsampling: str = "nearest"
    mirror: ClassVar[None] = None  # its dense layer mirrors no encoder layer

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        z_BxK = z.reshape(z.shape[0], -1)
        h = nn.relu(nn.Dense(math.prod(self.code_shape), name="project")(z_BxK))
        h_BxHxWxC = h.reshape(z.shape[0], *self.code_shape)
        decoder = DECODERS[self.upsampling](
            self.features, self.channels, self.image_hw, name="conv"
        )
        return decoder(h_BxHxWxC)
