"""Autoencoder modules: encoders, decoders, and the one structure that joins them.

Every model is an `Autoencoder`: an encoder (mlp, conv, resnet), a bottleneck
(`aejax/bottlenecks.py`: deterministic, gaussian, vector-quantised, winner-take-all) and a
decoder (the mlp mirror, tied, or a conv decoder: nearest, resize, transpose), each chosen by
config (`model.encoder`, `model.bottleneck`, `model.decoder`; `model.name` gives their
defaults, PRESETS). It maps images `x_BxHxWxC` in [0, 1] to decoder logits of the same shape
and a dict of named intermediates, the bottleneck's loss terms among them; losses read what
they need from that dict, so a new autoencoder is a new combination rather than a new class.
Corruption and penalties live in the loss.
"""

import math
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aejax import bottlenecks, conv, priors, supervised
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
    """Maps a code (flattened: a conv encoder's map serves too) through an MLP to per-pixel
    logits of image shape."""

    widths: Sequence[int]  # hidden widths; the output layer (prod(image_shape)) is added
    image_shape: Sequence[int] = (28, 28, 1)
    activation: str = "relu"
    kernel_init: str = "lecun_normal"

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
    """logits = decode(bottleneck(encode(x))): any encoder, any bottleneck, any decoder.

    The bottleneck shares this module's scope (`nn.share_scope`), so its parameters sit at the
    top of the tree beside "encoder" and "decoder" ("mu_head", "codebook", "discriminator"):
    the tree of a VAE is the same as before bottlenecks were parts. `learned_variance` adds
    one log-variance parameter for a gaussian likelihood, reported as `obs_logvar`.
    """

    encoder: nn.Module
    decoder: nn.Module
    bottleneck: nn.Module
    learned_variance: bool = False

    def setup(self):
        nn.share_scope(self, self.bottleneck)
        if self.learned_variance:
            self.obs_logvar = self.param("obs_logvar", nn.initializers.zeros, ())

    def encode(self, x: jax.Array) -> bottlenecks.Encoding:
        return self.bottleneck.encode(self.encoder(x))

    def decode(self, code: jax.Array) -> jax.Array:
        return self.decoder(code)

    def decode_indices(self, indices_BxN: jax.Array, code_shape: Sequence[int]) -> jax.Array:
        """A vector-quantised code given by its codebook indices (an image's code of
        `code_shape`, cut into vectors), decoded: how a prior's samples become images."""
        vectors = self.bottleneck.vectors(indices_BxN)
        return self.decode(vectors.reshape(indices_BxN.shape[0], *code_shape))

    def __call__(
        self, x: jax.Array, *, train: bool = False, samples: int | None = None
    ) -> tuple[jax.Array, dict]:
        """The logits and the bottleneck's `aux` (its loss terms under "terms"). With `samples`
        (a gaussian bottleneck) the code is [samples, B, ...] and the logits
        [samples, B, H, W, C] (importance sampling, IWAE)."""
        z, aux = self.bottleneck(self.encoder(x), train=train, samples=samples)
        if samples is None:
            logits = self.decode(z)
        else:
            logits = self.decode(z.reshape(-1, *z.shape[2:])).reshape(samples, *x.shape)
        if self.learned_variance:
            aux["obs_logvar"] = self.obs_logvar
        return logits, aux


def _kernel_init(cfg: ml_collections.ConfigDict) -> str:
    kernel_initializer(cfg.kernel_init)  # an unknown name fails here, when the model is built
    return cfg.kernel_init


def _need(cfg: ml_collections.ConfigDict, field: str, part: str):
    """A field a chosen part reads, or an error naming the part and a config that has it."""
    if field not in cfg or cfg[field] is None:
        example = "8" if field == "latent_dim" else "'(16,32)'"
        raise ValueError(
            f"{part} needs model.{field}, which this config leaves unset: set it, e.g. "
            f"--config.model.{field}={example} (model__{field}={example.strip(chr(39))} in Python)"
        )
    return cfg[field]


# Defaults of (encoder, bottleneck, decoder) by model.name; model.encoder, .bottleneck and
# .decoder override them. None as decoder: the conv config's `upsampling`.
PRESETS = {
    "autoencoder": ("mlp", "deterministic", "mlp"),
    "mlp": ("mlp", "deterministic", "mlp"),  # any depth and activations: linear, stacked, sparse
    "tied": ("mlp", "deterministic", "tied"),  # decoder kernels tied to the encoder's
    "vae": ("mlp", "gaussian", "mlp"),
    "conv": ("conv", "deterministic", None),  # nearest, resize or transposed-conv decoder
    "conv_vae": ("conv", "gaussian", "nearest"),
    "vqvae": ("conv", "vq", None),
}
ENCODERS = ("mlp", "conv", "resnet")
BOTTLENECKS = ("deterministic", "gaussian", "vq", "wta")  # aejax/bottlenecks.py
CODEBOOKS = ("loss", "ema")  # how a vector-quantised bottleneck keeps its codebook
DECODERS = ("mlp", "tied", *conv.DECODERS)  # the conv ones: "nearest", "resize", "transpose"


def structure(cfg: ml_collections.ConfigDict) -> tuple[str, str, str]:
    """The (encoder, bottleneck, decoder) that model config `cfg` asks for, checked."""
    encoder, bottleneck, decoder = PRESETS[cfg.name]
    encoder = cfg.get("encoder") or encoder
    bottleneck = cfg.get("bottleneck") or bottleneck
    decoder_field = "decoder" if cfg.get("decoder") or decoder else "upsampling"
    decoder = cfg.get("decoder") or decoder or cfg.get("upsampling", "nearest")
    for field, value, choices in (
        ("encoder", encoder, ENCODERS),
        ("bottleneck", bottleneck, BOTTLENECKS),
        (decoder_field, decoder, DECODERS if decoder_field == "decoder" else tuple(conv.DECODERS)),
    ):
        if value not in choices:
            raise ValueError(f"unknown {field} {value!r} (model.{field}); choose one of {choices}")
    return encoder, bottleneck, decoder


def _conv_code_shape(cfg: ml_collections.ConfigDict, layers: int, channels: int) -> tuple:
    """The map a conv decoder starts from: each of its `layers` doubles the image's sides
    halved (rounding up) as often."""
    if len(cfg.image_shape) != 3:
        raise ValueError(
            f"conv models need image_shape (height, width, channels), got {cfg.image_shape}"
        )
    height, width, _ = cfg.image_shape
    return (*[conv.encoder_sides(side, layers)[-1] for side in (height, width)], channels)


def _encoder(cfg: ml_collections.ConfigDict, kind: str, bottleneck: str) -> nn.Module:
    if kind == "mlp":
        widths = _need(cfg, "encoder_widths", "an mlp encoder")
        # Under a gaussian the last layer is hidden: the heads are linear on top of it.
        last = cfg.activation if bottleneck == "gaussian" else cfg.code_activation
        return MLPEncoder(widths, cfg.activation, last, _kernel_init(cfg))
    features = tuple(_need(cfg, "encoder_features", f"a {kind} encoder"))
    if kind == "resnet":
        return conv.ResNetEncoder(features)
    return conv.ConvEncoder(features, activation(cfg.code_activation))


def _decoder(cfg, kind: str, encoder: nn.Module, encoder_kind: str, bottleneck: str):
    image_shape = tuple(cfg.image_shape)
    vector_code = encoder_kind == "mlp" or bottleneck == "gaussian"
    if kind == "tied":
        if encoder_kind != "mlp" or bottleneck == "gaussian":
            raise ValueError(
                "a tied decoder mirrors an mlp encoder's kernels, so it needs model.encoder="
                f"'mlp' and a bottleneck that keeps the code's shape (not {bottleneck!r})"
            )
        return TiedMLPDecoder(encoder, image_shape, cfg.activation)
    if kind == "mlp":
        widths = cfg.get("decoder_widths")
        if widths is None:  # the mirror of an mlp encoder; a conv encoder's: one dense layer
            widths = cfg.encoder_widths if encoder_kind == "mlp" else ()
            widths = tuple(reversed(widths if bottleneck == "gaussian" else widths[:-1]))
        return MLPDecoder(
            tuple(widths), image_shape, cfg.get("activation", "relu"), _kernel_init(cfg)
        )
    features = tuple(_need(cfg, "decoder_features", f"a {kind} decoder"))
    if not vector_code and len(cfg.encoder_features) != len(features):
        raise ValueError(
            "a conv autoencoder's decoder doubles each side as often as its encoder halves it: "
            f"give as many decoder as encoder layers (at least one); got encoder_features="
            f"{tuple(cfg.encoder_features)}, decoder_features={features}"
        )
    hw, channels = image_shape[:2], image_shape[-1]
    if not vector_code:  # the encoder's map itself
        _conv_code_shape(cfg, len(features), 0)
        return conv.DECODERS[kind](features, channels, hw)
    # A vector reaches the map through a dense layer: to a conv encoder's map shape, else to
    # the decoder's first features at the sides its layers double from.
    map_channels = features[0] if encoder_kind == "mlp" else cfg.encoder_features[-1]
    code_shape = _conv_code_shape(cfg, len(features), map_channels)
    return conv.LatentConvDecoder(features, code_shape, channels, hw, kind)


def _bottleneck(cfg: ml_collections.ConfigDict, kind: str) -> nn.Module:
    if kind == "gaussian":
        scale = cfg.get("posterior_scale", "logvar")
        if scale not in bottlenecks.POSTERIOR_SCALES:
            raise ValueError(
                f"unknown model.posterior_scale {scale!r}; choose one of "
                f"{bottlenecks.POSTERIOR_SCALES}"
            )
        latent_dim = _need(cfg, "latent_dim", "a gaussian bottleneck")
        return bottlenecks.Gaussian(latent_dim, scale, cfg.total_correlation, cfg.dataset_size)
    if kind == "vq":
        if cfg.codebook not in CODEBOOKS:
            raise ValueError(f"unknown model.codebook {cfg.codebook!r}; choose one of {CODEBOOKS}")
        decay = cfg.ema_decay if cfg.codebook == "ema" else None
        return bottlenecks.VectorQuantizer(cfg.num_codes, cfg.code_dim, decay)
    if kind == "wta":
        return bottlenecks.WinnerTakeAll(cfg.lifetime_rate, cfg.spatial_sparsity)
    for field, value, choices in (
        ("prior_match", cfg.prior_match, bottlenecks.PRIOR_MATCHES),
        ("mmd_kernel", cfg.mmd_kernel, bottlenecks.MMD_KERNELS),
    ):
        if value not in choices:
            raise ValueError(f"unknown model.{field} {value!r}; choose one of {choices}")
    return bottlenecks.Deterministic(
        cfg.prior_match, cfg.mmd_kernel, tuple(cfg.discriminator_widths)
    )


def _autoencoder(cfg: ml_collections.ConfigDict) -> Autoencoder:
    encoder_kind, bottleneck_kind, decoder_kind = structure(cfg)
    encoder = _encoder(cfg, encoder_kind, bottleneck_kind)  # one instance: a tied decoder shares it
    decoder = _decoder(cfg, decoder_kind, encoder, encoder_kind, bottleneck_kind)
    return Autoencoder(
        encoder=encoder,
        decoder=decoder,
        bottleneck=_bottleneck(cfg, bottleneck_kind),
        learned_variance=cfg.get("learned_variance", False),
    )


def assigned_groups(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Parameter groups set by assignment rather than descent: an EMA codebook, which the
    optimiser moves by its whole gradient (SGD at rate 1) onto its running mean."""
    if cfg.name in PRESETS and structure(cfg)[1] == "vq" and cfg.codebook == "ema":
        return ("codebook",)
    return ()


def _classifier(cfg: ml_collections.ConfigDict) -> nn.Module:
    if cfg.head_input not in supervised.HEAD_INPUTS:
        raise ValueError(
            f"unknown model.head_input {cfg.head_input!r}; choose one of {supervised.HEAD_INPUTS}"
        )
    return supervised.Classifier(build(cfg.autoencoder), cfg.num_classes, cfg.head_input)


def _code_prior(cfg: ml_collections.ConfigDict) -> nn.Module:
    autoencoder_cfg = cfg.autoencoder.copy_and_resolve_references()
    if autoencoder_cfg.name not in PRESETS or structure(autoencoder_cfg)[1] != "vq":
        raise ValueError(
            "a code prior models a VQ-VAE's codebook indices: model.autoencoder needs "
            "bottleneck 'vq' (the shipped config vqvae_prior wraps vqvae's model)"
        )
    if cfg.embed_dim % cfg.num_heads:
        raise ValueError(
            f"model.embed_dim={cfg.embed_dim} must be a multiple of model.num_heads={cfg.num_heads}"
        )
    with autoencoder_cfg.unlocked():  # encoding reads the codebook alone, however it was kept
        autoencoder_cfg.codebook = "loss"
    autoencoder = _autoencoder(autoencoder_cfg)
    example = jax.ShapeDtypeStruct((1, *autoencoder_cfg.image_shape), jnp.float32)
    code = jax.eval_shape(
        lambda x: autoencoder.init_with_output(jax.random.key(0), x, method="encode")[0].code,
        example,
    )
    return priors.CodePrior(
        autoencoder, tuple(code.shape[1:]), cfg.embed_dim, cfg.num_layers, cfg.num_heads
    )


MODELS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    **{name: _autoencoder for name in PRESETS},
    "classifier": _classifier,  # a softmax head on the code (or output) of `model.autoencoder`
    "code_prior": _code_prior,  # a causal transformer over the codes of `model.autoencoder`, a VQ-VAE
}


def build(cfg: ml_collections.ConfigDict) -> nn.Module:
    """Builds the model named by `cfg.name` from its config group."""
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}; registered models: {sorted(MODELS)}")
    return MODELS[cfg.name](cfg)


def fit_to_data(
    cfg: ml_collections.ConfigDict,
    image_shape: Sequence[int],
    num_classes: int | None,
    dataset_size: int | None = None,
) -> ml_collections.ConfigDict:
    """A copy of model config `cfg` with the data's image shape, a classifier's classes, and
    the training set's size (which beta-TCVAE's estimator reads).

    Every model takes its shape from the data it trains on, so one config serves 28x28 grey
    digits and 64x64 colour faces alike.
    """
    cfg = cfg.copy_and_resolve_references()
    with cfg.unlocked():
        if "image_shape" in cfg:
            cfg.image_shape = tuple(int(d) for d in image_shape)
        if dataset_size is not None and cfg.get("total_correlation"):
            cfg.dataset_size = int(dataset_size)
        if "autoencoder" in cfg:  # a classifier's or a code prior's
            cfg.autoencoder = fit_to_data(cfg.autoencoder, image_shape, None, dataset_size)
        if cfg.name == "classifier":
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
        raise ValueError(
            f"model.output_bias='pixel_means' needs an MLP decoder; {cfg.name!r} has none"
        )
    layers = params["decoder"]["mlp"]
    last = f"dense{len(layers) - 1}"
    means_D = jnp.clip(jnp.mean(as_float(train_x), axis=0).reshape(-1), 1e-3, 1 - 1e-3)
    bias = jnp.log(means_D) - jnp.log1p(-means_D)
    return {**params, "decoder": {"mlp": {**layers, last: {**layers[last], "bias": bias}}}}
