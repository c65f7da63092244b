"""Dense parts: the MLP encoder, its mirrored and tied decoders, and activations and kernel
initialisers by name."""

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "elu": nn.elu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "linear": lambda x: x,
}


# Kernel initialisers by name; all are variance scaling. he_normal, variance_scaling(2.0,
# "fan_in", "truncated_normal"), keeps the activations' variance through (E)LU layers.
INITIALIZERS: dict[str, nn.initializers.Initializer] = {
    "lecun_normal": nn.initializers.lecun_normal(),  # flax's default for nn.Dense
    "he_normal": nn.initializers.he_normal(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
}


def _lookup(table: dict, kind: str, name: str):
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {sorted(table)}")
    return table[name]


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Looks up an activation by name, with an error that lists the known ones."""
    return _lookup(ACTIVATIONS, "activation", name)


def kernel_initializer(name: str) -> nn.initializers.Initializer:
    """Looks up a kernel initialiser by name, with an error that lists the known ones."""
    return _lookup(INITIALIZERS, "kernel_init", name)


class MLP(nn.Module):
    """Dense layers; `activation` between them, `final_activation` after the last."""

    widths: Sequence[int]
    activation: str = "relu"
    final_activation: str = "linear"
    kernel_init: str = "lecun_normal"  # a name in INITIALIZERS

    @nn.compact
    def __call__(self, h_BxD: jax.Array, stop: int | None = None) -> jax.Array:
        """`stop`: only the first `stop` layers (a hidden layer's activations)."""
        hidden, final = activation(self.activation), activation(self.final_activation)
        init = kernel_initializer(self.kernel_init)
        for i, width in enumerate(self.widths[:stop]):
            h_BxD = nn.Dense(width, kernel_init=init, name=f"dense{i}")(h_BxD)
            h_BxD = hidden(h_BxD) if i < len(self.widths) - 1 else final(h_BxD)
        return h_BxD


class MLPEncoder(nn.Module):
    """Flattens an image batch and maps it through an MLP to a code."""

    widths: Sequence[int]  # hidden widths then the code width, e.g. (500, 500, 20)
    activation: str = "relu"
    code_activation: str = "linear"
    kernel_init: str = "lecun_normal"
    layer_kind: ClassVar[str] = "dense"  # greedy pretraining pairs its layers with a decoder's

    @property
    def dense_widths(self) -> tuple[int, ...]:
        """Its dense layers' widths, the last the code's."""
        return tuple(self.widths)

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array, stop: int | None = None) -> jax.Array:
        """`stop`: only the first `stop` layers, whose last gives a hidden layer's units."""
        x_BxD = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        mlp = MLP(self.widths, self.activation, self.code_activation, self.kernel_init, name="mlp")
        return mlp(x_BxD, stop)

    def kernels(self) -> list[jax.Array]:
        """The layers' kernels `[D_in, D_out]`, input side first (once the encoder has params)."""
        layers = self.variables["params"]["mlp"]
        return [layers[f"dense{i}"]["kernel"] for i in range(len(self.widths))]


class MLPDecoder(nn.Module):
    """Maps a code (flattened: a conv encoder's map serves too) through an MLP to per-pixel
    logits of image shape."""

    widths: Sequence[int]  # hidden widths; the output layer (prod(image_shape)) is added
    image_shape: Sequence[int] = (28, 28, 1)
    activation: str = "relu"
    kernel_init: str = "lecun_normal"
    mirror: ClassVar[str] = "dense"  # its layer D-1-k mirrors a dense encoder's layer k

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        widths = (*self.widths, math.prod(self.image_shape))
        z_BxK = z.reshape(z.shape[0], -1)
        logits_BxD = MLP(widths, self.activation, "linear", self.kernel_init, name="mlp")(z_BxK)
        return logits_BxD.reshape(z.shape[0], *self.image_shape)


class TiedMLPDecoder(nn.Module):
    """Mirrors an MLPEncoder through that encoder's kernels, transposed: one parameter, two uses.

    `encoder` must be the very instance the Autoencoder holds: flax adopts a module passed to
    two parents once and shares it by reference, so no decoder kernel exists. Only the
    biases are the decoder's own.
    """

    encoder: MLPEncoder
    image_shape: Sequence[int] = (28, 28, 1)
    activation: str = "relu"
    mirror: ClassVar[str] = "tied"  # its layer D-1-k is a dense encoder's layer k, transposed

    @nn.compact
    def __call__(self, z_BxK: jax.Array) -> jax.Array:
        hidden = activation(self.activation)
        h = z_BxK
        for i, kernel_DxK in reversed(list(enumerate(self.encoder.kernels()))):
            bias_D = self.param(f"bias{i}", nn.initializers.zeros, (kernel_DxK.shape[0],))
            h = h @ kernel_DxK.T + bias_D
            h = hidden(h) if i > 0 else h  # the last layer gives logits
        return h.reshape(z_BxK.shape[0], *self.image_shape)
