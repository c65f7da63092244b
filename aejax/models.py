"""Autoencoder modules: an encoder, a decoder, and the glue that makes them an AE or a VAE.

Every model maps images `x_BxHxWxC` in [0, 1] to decoder logits of the same shape and a dict
of named intermediates (`code`, or `mu`, `logvar`, `z` for a VAE, and `sigma` for its sigma
head); losses read what they need from that dict, so a new autoencoder is a new combination
rather than a new class. `MODELS` holds the architectures by `config.model.name`; corruption
and penalties live in the loss.
"""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aejax import conv, supervised
from aejax.dataset import as_float

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
    def __call__(self, h_BxD: jax.Array) -> jax.Array:
        hidden, final = activation(self.activation), activation(self.final_activation)
        init = kernel_initializer(self.kernel_init)
        for i, width in enumerate(self.widths):
            h_BxD = nn.Dense(width, kernel_init=init, name=f"dense{i}")(h_BxD)
            h_BxD = hidden(h_BxD) if i < len(self.widths) - 1 else final(h_BxD)
        return h_BxD


class MLPEncoder(nn.Module):
    """Flattens an image batch and maps it through an MLP to a code."""

    widths: Sequence[int]  # hidden widths then the code width, e.g. (500, 500, 20)
    activation: str = "relu"
    code_activation: str = "linear"
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        x_BxD = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
        mlp = MLP(self.widths, self.activation, self.code_activation, self.kernel_init, name="mlp")
        return mlp(x_BxD)

    def kernels(self) -> list[jax.Array]:
        """The layers' kernels `[D_in, D_out]`, input side first (once the encoder has params)."""
        layers = self.variables["params"]["mlp"]
        return [layers[f"dense{i}"]["kernel"] for i in range(len(self.widths))]


class MLPDecoder(nn.Module):
    """Maps a code through an MLP to per-pixel logits of image shape."""

    widths: Sequence[int]  # hidden widths; the output layer (prod(image_shape)) is added
    image_shape: Sequence[int] = (28, 28, 1)
    activation: str = "relu"
    kernel_init: str = "lecun_normal"

    @nn.compact
    def __call__(self, z_BxK: jax.Array) -> jax.Array:
        widths = (*self.widths, math.prod(self.image_shape))
        logits_BxD = MLP(widths, self.activation, "linear", self.kernel_init, name="mlp")(z_BxK)
        return logits_BxD.reshape(z_BxK.shape[0], *self.image_shape)


class TiedMLPDecoder(nn.Module):
    """Mirrors an MLPEncoder through that encoder's kernels, transposed: one parameter, two uses.

    `encoder` must be the very instance the Autoencoder holds: flax adopts a module passed to
    two parents once and shares it by reference, so no decoder kernel exists. Only the
    biases are the decoder's own.
    """

    encoder: MLPEncoder
    image_shape: Sequence[int] = (28, 28, 1)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z_BxK: jax.Array) -> jax.Array:
        hidden = activation(self.activation)
        h = z_BxK
        for i, kernel_DxK in reversed(list(enumerate(self.encoder.kernels()))):
            bias_D = self.param(f"bias{i}", nn.initializers.zeros, (kernel_DxK.shape[0],))
            h = h @ kernel_DxK.T + bias_D
            h = hidden(h) if i > 0 else h  # the last layer gives logits
        return h.reshape(z_BxK.shape[0], *self.image_shape)


class Autoencoder(nn.Module):
    """A deterministic autoencoder: logits = decode(encode(x))."""

    encoder: nn.Module
    decoder: nn.Module

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def decode(self, code: jax.Array) -> jax.Array:
        return self.decoder(code)

    def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, dict]:
        del train  # no stochastic parts; kept so every model is called the same way
        code = self.encode(x)
        return self.decode(code), {"code": code}


POSTERIOR_SCALES = ("logvar", "sigma")  # what the VAE's second head outputs
SIGMA_EPS = 1e-10  # log(sigma^2 + eps): the sigma head's floor, as the seed wrote it


class VAE(nn.Module):
    """A VAE with a diagonal gaussian posterior and a standard normal prior.

    The encoder gives features (flattened, so a conv encoder's map serves too); two dense heads
    give the posterior mean and, by `posterior_scale`, its log-variance (positive variance
    without a constraint) or its standard deviation sigma itself (the seed's other variant,
    whose KL reads log(sigma^2 + 1e-10)). At evaluation the decoder still sees a sample, so the
    reported ELBO is an unbiased single-sample estimate. `learned_variance` adds one
    log-variance parameter for a gaussian likelihood, reported as `obs_logvar`.
    """

    encoder: nn.Module
    decoder: nn.Module
    latent_dim: int
    learned_variance: bool = False
    posterior_scale: str = "logvar"  # one of POSTERIOR_SCALES

    def setup(self):
        self.mu_head = nn.Dense(self.latent_dim)
        if self.posterior_scale == "logvar":
            self.logvar_head = nn.Dense(self.latent_dim)
        else:
            self.sigma_head = nn.Dense(self.latent_dim)
        if self.learned_variance:
            self.obs_logvar = self.param("obs_logvar", nn.initializers.zeros, ())

    def _posterior(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The mean, the sample's scale and the log-variance: from a sigma head its own output
        and log(sigma^2 + eps), from a log-variance head exp(logvar / 2) and its output."""
        h = self.encoder(x)
        h_BxD = h.reshape(h.shape[0], -1)
        mu = self.mu_head(h_BxD)
        if self.posterior_scale == "sigma":
            sigma = self.sigma_head(h_BxD)
            return mu, sigma, jnp.log(jnp.square(sigma) + SIGMA_EPS)
        logvar = self.logvar_head(h_BxD)
        return mu, jnp.exp(0.5 * logvar), logvar

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The posterior's mean and log-variance."""
        mu, _, logvar = self._posterior(x)
        return mu, logvar

    def decode(self, z_BxK: jax.Array) -> jax.Array:
        return self.decoder(z_BxK)

    def __call__(
        self, x: jax.Array, *, train: bool = False, samples: int | None = None
    ) -> tuple[jax.Array, dict]:
        """Decodes one posterior sample per image, or `samples` of them: then `z` is
        [samples, B, K] and the logits [samples, B, H, W, C] (importance sampling, IWAE)."""
        del train
        mu, std, logvar = self._posterior(x)
        aux = {"mu": mu, "logvar": logvar}
        if self.posterior_scale == "sigma":  # the KL reads sigma itself, as the seed's does
            aux["sigma"] = std
        shape = mu.shape if samples is None else (samples, *mu.shape)
        eps = jax.random.normal(self.make_rng("noise"), shape, mu.dtype)
        z = mu + std * eps  # reparameterisation: gradients flow to both heads
        logits = self.decode(z.reshape(-1, self.latent_dim)).reshape(*shape[:-1], *x.shape[1:])
        aux["z"] = z
        if self.learned_variance:
            aux["obs_logvar"] = self.obs_logvar
        return logits, aux


def _kernel_init(cfg: ml_collections.ConfigDict) -> str:
    kernel_initializer(cfg.kernel_init)  # an unknown name fails here, when the model is built
    return cfg.kernel_init


def _mlp_encoder(cfg: ml_collections.ConfigDict) -> MLPEncoder:
    return MLPEncoder(cfg.encoder_widths, cfg.activation, cfg.code_activation, _kernel_init(cfg))


def _mlp_ae(cfg: ml_collections.ConfigDict) -> nn.Module:
    decoder_widths = tuple(reversed(cfg.encoder_widths[:-1]))
    decoder = MLPDecoder(decoder_widths, tuple(cfg.image_shape), cfg.activation, _kernel_init(cfg))
    return Autoencoder(_mlp_encoder(cfg), decoder)


def _tied_mlp_ae(cfg: ml_collections.ConfigDict) -> nn.Module:
    encoder = _mlp_encoder(cfg)  # one instance, handed to both: that is the tie
    return Autoencoder(encoder, TiedMLPDecoder(encoder, tuple(cfg.image_shape), cfg.activation))


def _mlp_vae(cfg: ml_collections.ConfigDict) -> nn.Module:
    # The encoder's last hidden layer keeps its activation: the heads are linear on top of it.
    init = _kernel_init(cfg)
    encoder = MLPEncoder(cfg.encoder_widths, cfg.activation, cfg.activation, init)
    decoder_widths = tuple(reversed(cfg.encoder_widths))
    decoder = MLPDecoder(decoder_widths, tuple(cfg.image_shape), cfg.activation, init)
    return _vae(cfg, encoder, decoder)


def _vae(cfg: ml_collections.ConfigDict, encoder: nn.Module, decoder: nn.Module) -> VAE:
    if cfg.posterior_scale not in POSTERIOR_SCALES:
        raise ValueError(
            f"unknown model.posterior_scale {cfg.posterior_scale!r}; choose one of "
            f"{POSTERIOR_SCALES}"
        )
    return VAE(encoder, decoder, cfg.latent_dim, cfg.learned_variance, cfg.posterior_scale)


# The conv decoder's ways back to the image: conv then double, trimming the overshoot (for 28:
# 4-8-16-14-28); nearest resize to the encoder's sides then conv (4-7-14-28, the TensorFlow
# tutorials'); stride-2 transposed convolutions (4-7-14-28).
CONV_DECODERS = {
    "nearest": conv.ConvDecoder,
    "resize": conv.ResizeConvDecoder,
    "transpose": conv.ConvTransposeDecoder,
}


def _conv_code_shape(cfg: ml_collections.ConfigDict) -> tuple[int, int, int]:
    """The encoder's output map (height, width, features): each layer halves the image's sides.

    Each decoder layer doubles a side back, so the two have as many layers.
    """
    if len(cfg.image_shape) != 3:
        raise ValueError(
            f"conv models need image_shape (height, width, channels), got {cfg.image_shape}"
        )
    layers = len(cfg.encoder_features)
    if layers < 1 or len(cfg.decoder_features) != layers:
        raise ValueError(
            "a conv autoencoder's decoder doubles each side as often as its encoder halves it: "
            f"give as many decoder as encoder layers (at least one); got encoder_features="
            f"{tuple(cfg.encoder_features)}, decoder_features={tuple(cfg.decoder_features)}"
        )
    height, width, _ = cfg.image_shape
    sides = [conv.encoder_sides(side, layers)[-1] for side in (height, width)]
    return (*sides, cfg.encoder_features[-1])


def _conv_ae(cfg: ml_collections.ConfigDict) -> nn.Module:
    _conv_code_shape(cfg)
    if cfg.upsampling not in CONV_DECODERS:
        choices = tuple(CONV_DECODERS)
        raise ValueError(f"unknown upsampling {cfg.upsampling!r}; choose one of {choices}")
    encoder = conv.ConvEncoder(tuple(cfg.encoder_features))
    hw, channels = tuple(cfg.image_shape[:2]), cfg.image_shape[-1]
    decoder = CONV_DECODERS[cfg.upsampling](tuple(cfg.decoder_features), channels, hw)
    return Autoencoder(encoder, decoder)


def _conv_vae(cfg: ml_collections.ConfigDict) -> nn.Module:
    code_shape = _conv_code_shape(cfg)  # the decoder starts from the encoder's map shape
    encoder = conv.ConvEncoder(tuple(cfg.encoder_features))
    hw, channels = tuple(cfg.image_shape[:2]), cfg.image_shape[-1]
    decoder = conv.LatentConvDecoder(tuple(cfg.decoder_features), code_shape, channels, hw)
    return _vae(cfg, encoder, decoder)


def _classifier(cfg: ml_collections.ConfigDict) -> nn.Module:
    if cfg.head_input not in supervised.HEAD_INPUTS:
        raise ValueError(
            f"unknown model.head_input {cfg.head_input!r}; choose one of {supervised.HEAD_INPUTS}"
        )
    return supervised.Classifier(build(cfg.autoencoder), cfg.num_classes, cfg.head_input)


MODELS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    "mlp": _mlp_ae,  # any depth and activations: linear, 2-D code, stacked, sparse, ...
    "tied": _tied_mlp_ae,  # the same with the decoder's kernels tied to the encoder's
    "vae": _mlp_vae,
    "conv": _conv_ae,  # conv encoder, nearest-upsampling or transposed-conv decoder
    "conv_vae": _conv_vae,  # the conv encoder and nearest-upsampling decoder around gaussian heads
    "classifier": _classifier,  # a softmax head on the code (or output) of `model.autoencoder`
}


def build(cfg: ml_collections.ConfigDict) -> nn.Module:
    """Builds the model named by `cfg.name` from its config group."""
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}; registered models: {sorted(MODELS)}")
    return MODELS[cfg.name](cfg)


def fit_to_data(
    cfg: ml_collections.ConfigDict, image_shape: Sequence[int], num_classes: int | None
) -> ml_collections.ConfigDict:
    """A copy of model config `cfg` with the data's image shape, and a classifier's classes.

    Every model takes its shape from the data it trains on, so one config serves 28x28 grey
    digits and 64x64 colour faces alike.
    """
    cfg = cfg.copy_and_resolve_references()
    with cfg.unlocked():
        if "image_shape" in cfg:
            cfg.image_shape = tuple(int(d) for d in image_shape)
        if cfg.name == "classifier":
            cfg.autoencoder = fit_to_data(cfg.autoencoder, image_shape, None)
            if num_classes is None:
                raise ValueError("a classifier needs labelled data; this dataset has no labels")
            cfg.num_classes = int(num_classes)
    return cfg


def init_from_data(cfg: ml_collections.ConfigDict, params: dict, train_x: jax.Array) -> dict:
    """Parameters that start from the training data, where `cfg.output_bias` asks for it.

    "pixel_means" sets an MLP decoder's output bias to the logits of the training pixels' means,
    the setup of the IWAE paper (Importance Weighted Autoencoders): the decoder starts near the average image, not at grey.
    Means are clipped to [1e-3, 1 - 1e-3] so that always-black pixels get a finite bias.
    """
    how = cfg.output_bias
    if how is None:
        return params
    if how != "pixel_means":
        raise ValueError(f"unknown model.output_bias {how!r}; the one choice is 'pixel_means'")
    if "mlp" not in params.get("decoder", {}):
        raise ValueError(f"model.output_bias='pixel_means' needs an MLP decoder; {cfg.name!r} has none")
    layers = params["decoder"]["mlp"]
    last = f"dense{len(layers) - 1}"
    means_D = jnp.clip(jnp.mean(as_float(train_x), axis=0).reshape(-1), 1e-3, 1 - 1e-3)
    bias = jnp.log(means_D) - jnp.log1p(-means_D)
    return {**params, "decoder": {"mlp": {**layers, last: {**layers[last], "bias": bias}}}}
