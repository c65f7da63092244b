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
A convolution of a doubled map is computed on the map before doubling (`conv_of_upsampled`):
the same products on a quarter of the pixels, and no doubled map for the kernel's gradient to
transpose: the conv AE trained 1.67x faster on XLA:CPU (docs/benchmarks.md).
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


def _phase_taps(pad: tuple[int, int], side: int) -> tuple[np.ndarray, tuple[int, int], int]:
    """Along one axis, a 3-tap convolution padded `pad` of a map of `side` doubled: which tap of
    the undoubled map each phase's tap reads ([phase, tap, 3] of 0 and 1), the undoubled map's
    padding, and the output's length.

    Output position 2i + a reads doubled positions 2i + a - lo + d (d = 0, 1, 2), which are the
    undoubled map's i + floor((a - lo + d) / 2): taps -1..1 for lo = 1, 0..1 for lo = 0."""
    lo, hi = pad
    if lo not in (0, 1) or hi not in (0, 1):
        raise ValueError(f"padding {pad}: a convolution of a doubled map pads 0 or 1 each side")
    length = 2 * side + lo + hi - 2
    reads = np.zeros((2, 2 + lo, 3), np.float32)
    for phase in range(2):
        for d in range(3):
            reads[phase, (phase - lo + d) // 2 + lo, d] = 1
    return reads, (lo, -(-length // 2) - side + 1), length


def conv_of_upsampled(u_BxHxWxC: jax.Array, kernel_3x3xCxF: jax.Array, window_strides, padding,
                      lhs_dilation=None, rhs_dilation=None, feature_group_count=1,
                      **_) -> jax.Array:  # fmt: skip
    """`lax.conv_general_dilated(upsample_2x(u), kernel, (1, 1), padding)`, computed on `u`.

    Each 2x2 block of the output reads the same undoubled pixels, so the kernel is folded into
    one for each of the block's four phases, and one convolution of `u` to 4F channels gives
    them all, interleaved after. Takes `lax.conv_general_dilated`'s arguments (what `nn.Conv`
    calls), for 3x3 kernels, stride 1, no dilation or groups, and 0 or 1 padding each side."""
    dilated = any(d is not None and tuple(d) != (1, 1) for d in (lhs_dilation, rhs_dilation))
    if tuple(window_strides) != (1, 1) or kernel_3x3xCxF.shape[:2] != (3, 3) or dilated or (
        feature_group_count != 1
    ):
        raise ValueError("conv_of_upsampled computes ungrouped, undilated 3x3 convolutions of "
                         "stride 1: use nn.Conv's own convolution for others")  # fmt: skip
    if isinstance(padding, str):  # lax's names, for a 3x3 kernel
        padding = {"SAME": [(1, 1)] * 2, "VALID": [(0, 0)] * 2}[padding.upper()]
    (reads_h, pad_h, out_h), (reads_w, pad_w, out_w) = map(
        _phase_taps, padding, u_BxHxWxC.shape[1:3]
    )
    f = kernel_3x3xCxF.shape[-1]
    phases = jnp.einsum("aod,bqe,decf->oqcabf", reads_h, reads_w, kernel_3x3xCxF)
    phases = phases.astype(kernel_3x3xCxF.dtype)
    y = jax.lax.conv_general_dilated(
        u_BxHxWxC, phases.reshape(*phases.shape[:3], 4 * f), (1, 1), (pad_h, pad_w),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )  # fmt: skip
    b, h, w = y.shape[:3]
    y = y.reshape(b, h, w, 2, 2, f).transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, f)
    return y[:, :out_h, :out_w]


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
        for i, f in enumerate(self.features):  # h is the map before its doubling
            padding = [(1, 1)] * 2 if i < last else list(map(_trim_padding, sides_in, halves))
            doubled = conv_of_upsampled if i > 0 else None
            conv = nn.Conv(f, (3, 3), padding=padding, conv_general_dilated=doubled,
                           name=f"conv{i}")  # fmt: skip
            h = nn.relu(conv(h))
        if [2 * side for side in h.shape[1:3]] != list(self.image_hw):  # an odd side: cropped
            h = upsample_2x(h)[:, : self.image_hw[0], : self.image_hw[1]]
            return nn.Conv(self.channels, (3, 3), padding="SAME", name="logits")(h)
        logits = nn.Conv(self.channels, (3, 3), padding=[(1, 1)] * 2,
                         conv_general_dilated=conv_of_upsampled, name="logits")  # fmt: skip
        return logits(h)


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
            size = (heights[-2 - i], widths[-2 - i])
            doubling = size == (2 * h.shape[1], 2 * h.shape[2])
            h = h if doubling else resize_nearest(h, *size)
            folded = conv_of_upsampled if doubling else None
            conv = nn.Conv(self.features[i], (3, 3), padding=[(1, 1)] * 2, name=f"conv{i}",
                           conv_general_dilated=folded)  # fmt: skip
            h = nn.relu(conv(h))
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
