"""The model a config describes: `build(config.model)`, and the shape fitted to the data.

Every model is an `Autoencoder` (`autoencoder.py`): an encoder (mlp, conv, resnet), a bottleneck
(`aejax/models/bottlenecks.py`: deterministic, gaussian, vector-quantised, winner-take-all;
`quantisers.py`: finite scalar, residual, lookup-free) and a decoder (the mlp mirror, tied, or
a conv decoder: nearest, resize, transpose), each chosen by config (`model.encoder`,
`model.bottleneck`, `model.decoder`; `model.name` gives their defaults, PRESETS). It maps
images `x_BxHxWxC` in [0, 1] to decoder logits of the same shape and a dict of named
intermediates, the bottleneck's loss terms among them; losses read what they need from that
dict, so a new autoencoder is a new combination rather than a new class.
The sizes a config leaves unset are derived from the other parts (`part_sizes`), so any config
can swap any part. Corruption and penalties live in the loss.
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aejax import random_streams
from aejax.data.dataset import as_float
from aejax.models import (
    autoencoder,
    bottlenecks,
    classifier,
    code_prior,
    codebooks,
    conv,
    mlp,
    posteriors,
    quantisers,
    sae,
)


def _kernel_init(cfg: ml_collections.ConfigDict) -> str:
    mlp.kernel_initializer(cfg.kernel_init)  # an unknown name fails here, when the model is built
    return cfg.kernel_init


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
# aejax/models/bottlenecks.py; the quantisers fsq, rvq, lfq: aejax/models/quantisers.py
BOTTLENECKS = ("deterministic", "gaussian", "vq", "wta", "fsq", "rvq", "lfq")
QUANTISERS = ("vq", "fsq", "rvq", "lfq")  # the bottlenecks that cut the code into vectors
PRIOR_CODES = ("vq", "fsq", "lfq")  # those a code prior models: an index per vector
CODEBOOKS = ("loss", "ema")  # how a vector-quantised bottleneck keeps its codebook
DECODERS = ("mlp", "tied", *conv.DECODERS)  # the conv ones: "nearest", "resize", "transpose"

# The sizes of a part a config leaves unset (None), so that any config can swap any part:
# `part_sizes` derives them from the other parts where it can, else takes these.
MLP_WIDTHS = (256, 64)  # an mlp encoder's hidden layer, then its code (a gaussian's: hidden)
CONV_FEATURES = (16, 32, 32)  # a conv or resnet encoder's channels: conv_vae's
VECTOR_DECODER_FEATURES = (64, 32)  # a conv decoder after a vector code: 64 maps at 1/4 side
MAP_LATENT_DIM = 16  # a gaussian on an encoder's map: conv_vae's latents


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


def part_sizes(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of autoencoder config `cfg` with the sizes its parts read and it leaves unset.

    A conv encoder mirrors a conv decoder's features and a conv decoder a conv encoder's; a
    conv decoder after a vector code, and an encoder with nothing to mirror, take the defaults
    above; a gaussian keeps an mlp encoder's code width (its last layer becomes hidden), or on a
    map MAP_LATENT_DIM. Fields a config sets are kept as they are.
    """
    encoder, bottleneck, decoder = structure(cfg)
    cfg = cfg.copy_and_resolve_references()
    conv_decoder = decoder in conv.DECODERS
    with cfg.unlocked():
        if encoder == "mlp" and cfg.get("encoder_widths") is None:
            cfg.encoder_widths = MLP_WIDTHS
        if encoder != "mlp" and cfg.get("encoder_features") is None:
            features = cfg.get("decoder_features") if conv_decoder else None
            cfg.encoder_features = CONV_FEATURES if features is None else tuple(reversed(features))
        if bottleneck == "gaussian" and cfg.get("latent_dim") is None:
            cfg.latent_dim = cfg.encoder_widths[-1] if encoder == "mlp" else MAP_LATENT_DIM
        if conv_decoder and cfg.get("decoder_features") is None:
            mirror = None if encoder == "mlp" else tuple(reversed(cfg.encoder_features))
            cfg.decoder_features = mirror or VECTOR_DECODER_FEATURES
    return cfg


def _conv_code_shape(cfg: ml_collections.ConfigDict, layers: int, channels: int) -> tuple:
    """The map a conv decoder starts from: each of its `layers` doubles the image's sides
    halved (rounding up) as often."""
    if len(cfg.image_shape) != 3:
        raise ValueError(
            f"conv models need image_shape (height, width, channels), got {cfg.image_shape}"
        )
    height, width, _ = cfg.image_shape
    return (*[conv.encoder_sides(side, layers)[-1] for side in (height, width)], channels)


def _encoder(cfg: ml_collections.ConfigDict, kind: str, heads: bool) -> nn.Module:
    if kind == "mlp":
        widths = tuple(cfg.encoder_widths)
        # Under a bottleneck's heads (a gaussian's) the last layer is hidden: they are linear.
        last = cfg.activation if heads else cfg.code_activation
        return mlp.MLPEncoder(widths, cfg.activation, last, _kernel_init(cfg))
    features = tuple(cfg.encoder_features)
    if kind == "resnet":
        return conv.ResNetEncoder(features)
    return conv.ConvEncoder(features, mlp.activation(cfg.code_activation))


def _decoder(cfg, kind: str, encoder: nn.Module, encoder_kind: str, bottleneck: nn.Module):
    image_shape, heads = tuple(cfg.image_shape), bottleneck.dense_heads
    vector_code = encoder_kind == "mlp" or heads
    if kind == "tied":
        _check_tied(encoder_kind, structure(cfg)[1], heads)
        return mlp.TiedMLPDecoder(encoder, image_shape, cfg.activation)
    if kind == "mlp":
        widths = cfg.get("decoder_widths")
        if widths is None:  # the mirror of an mlp encoder; a conv encoder's: one dense layer
            widths = cfg.encoder_widths if encoder_kind == "mlp" else ()
            widths = tuple(reversed(widths if heads else widths[:-1]))
        return mlp.MLPDecoder(
            tuple(widths), image_shape, cfg.get("activation", "relu"), _kernel_init(cfg)
        )
    features = tuple(cfg.decoder_features)
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


def _check_tied(encoder: str, bottleneck: str, heads: bool) -> None:
    """Refuses the pairs a tied decoder cannot make: it runs an mlp encoder's kernels backwards
    from the code, so it needs those kernels and a code of their last layer's width."""
    if encoder != "mlp":
        raise ValueError(
            f"a tied decoder mirrors an mlp encoder's kernels; model.encoder={encoder!r} has "
            "none: use model.decoder='mlp' or 'nearest', or model.encoder='mlp'"
        )
    if heads:
        raise ValueError(
            f"a tied decoder mirrors an mlp encoder's kernels from its code; a {bottleneck!r} "
            "bottleneck's heads give a code of their own (model.latent_dim wide): use "
            "model.decoder='mlp', or model.bottleneck='deterministic'"
        )


def _check_code_dim(cfg: ml_collections.ConfigDict, encoder: str, kind: str) -> None:
    """A quantiser cuts the code's last axis into vectors (of `code_dim`; FSQ's of one
    dimension per level count): their size must divide it."""
    field = "encoder_widths" if encoder == "mlp" else "encoder_features"
    width = cfg[field][-1]
    fsq = kind == "fsq"
    size = len(cfg.fsq_levels) if fsq else cfg.code_dim
    sized_by = "len(model.fsq_levels)" if fsq else "model.code_dim"
    a = "an" if kind in ("fsq", "lfq") else "a"
    if kind == "lfq" and size > quantisers.LFQ_MAX_BITS:
        raise ValueError(
            f"an lfq bottleneck's entropy term enumerates its 2^model.code_dim entries: "
            f"model.code_dim={size} is over {quantisers.LFQ_MAX_BITS}; set one that divides "
            f"model.{field}[-1]={width}"
        )
    if width % size:
        divisor = max(d for d in range(1, size) if width % d == 0)
        fix = f"model.fsq_levels to {divisor} level counts" if fsq else f"model.code_dim={divisor}"
        raise ValueError(
            f"{a} {kind} bottleneck cuts the code into vectors of {sized_by}={size}, which does "
            f"not divide its last axis, model.{field}[-1]={width}: set {fix} (or another divisor "
            f"of {width}), or model.{field} to end in a multiple of {size}"
        )


def _codebook_care(cfg: ml_collections.ConfigDict, kind: str) -> dict:
    """A learnt codebook's options (`codebooks`), checked: a config written before they
    existed has the defaults."""
    care = {
        "init": cfg.get("codebook_init", "uniform"),
        "gradient": cfg.get("codebook_gradient", "straight_through"),
        "distance": cfg.get("codebook_distance", "euclidean"),
        "dead_code_steps": cfg.get("dead_code_steps", 0),
    }
    if kind == "vq" and cfg.codebook not in CODEBOOKS:
        raise ValueError(f"unknown model.codebook {cfg.codebook!r}; choose one of {CODEBOOKS}")
    for field, choices in (
        ("init", codebooks.INITS), ("gradient", codebooks.GRADIENTS),
        ("distance", codebooks.DISTANCES),
    ):  # fmt: skip
        if care[field] not in choices:
            raise ValueError(
                f"unknown model.codebook_{field} {care[field]!r}; choose one of {choices}"
            )
    if kind == "rvq" and care["distance"] != "euclidean":
        raise ValueError(
            "an rvq bottleneck quantises residuals, whose lengths shrink level by level: "
            "model.codebook_distance='cosine' is for model.bottleneck='vq'"
        )
    steps = care["dead_code_steps"]
    if steps < 0 or (steps and (kind != "vq" or cfg.codebook != "ema")):
        raise ValueError(
            f"model.dead_code_steps={steps}: restarts set an entry's moving averages, so they "
            "need model.bottleneck='vq' with model.codebook='ema' (0 turns them off)"
        )
    return care


def _choice(cfg: ml_collections.ConfigDict, field: str, choices: Sequence[str], default: str):
    """Model field `field` checked against `choices`; `default` for a config written before it."""
    value = cfg.get(field, default)
    if value not in choices:
        raise ValueError(f"unknown model.{field} {value!r}; choose one of {tuple(choices)}")
    return value


def _gaussian(cfg: ml_collections.ConfigDict) -> nn.Module:
    scale = _choice(cfg, "posterior_scale", bottlenecks.POSTERIOR_SCALES, "logvar")
    flow = _choice(cfg, "flow", posteriors.FLOWS, "none")
    prior = _choice(cfg, "prior", posteriors.PRIORS, "normal")
    tc_estimator = _choice(cfg, "tc_estimator", bottlenecks.TC_ESTIMATORS, "minibatch")
    match = cfg.prior_match
    if match not in ("none", "mmd"):
        raise ValueError(
            f"model.prior_match={match!r}: a gaussian bottleneck's KL already matches its "
            "posteriors to N(0, I); 'mmd' adds InfoVAE's MMD on their aggregate, or use 'none'"
        )
    kernel = _choice(cfg, "mmd_kernel", bottlenecks.MMD_KERNELS, "imq") if match == "mmd" else None
    if flow != "none" and prior != "normal":
        raise ValueError(
            f"model.flow={flow!r} with model.prior={prior!r}: a VampPrior mixes the posteriors "
            "of its pseudo-inputs, which a flow would have to carry too; choose one"
        )
    minibatch_tc = cfg.total_correlation and tc_estimator == "minibatch"
    if (flow != "none" or prior != "normal") and (minibatch_tc or kernel is not None):
        raise ValueError(
            "beta-TCVAE's estimator reads a gaussian posterior and InfoVAE's MMD a N(0, I) "
            f"prior: with model.flow={flow!r} and model.prior={prior!r}, use "
            "model.tc_estimator='discriminator' (FactorVAE) and model.prior_match='none'"
        )
    layers = cfg.get("flow_layers", 0) if flow != "none" else 0
    if flow != "none" and layers < 1:
        raise ValueError(f"model.flow={flow!r} needs model.flow_layers of at least 1")
    return bottlenecks.Gaussian(
        cfg.latent_dim, scale, cfg.total_correlation, cfg.dataset_size, kernel,
        tc_estimator=tc_estimator, discriminator_widths=tuple(cfg.discriminator_widths),
        flow=flow, flow_layers=layers, prior=prior,
    )  # fmt: skip


def _bottleneck(cfg: ml_collections.ConfigDict, kind: str) -> nn.Module:
    if kind == "gaussian":
        return _gaussian(cfg)
    if kind == "vq":
        care = _codebook_care(cfg, kind)
        decay = cfg.ema_decay if cfg.codebook == "ema" else None
        return bottlenecks.VectorQuantizer(
            cfg.num_codes, cfg.code_dim, decay, cosine=care["distance"] == "cosine",
            rotation=care["gradient"] == "rotation", dead_code_steps=care["dead_code_steps"],
        )  # fmt: skip
    if kind == "fsq":
        return quantisers.FiniteScalarQuantizer(tuple(cfg.fsq_levels))
    if kind == "rvq":
        care = _codebook_care(cfg, kind)
        return quantisers.ResidualVectorQuantizer(
            cfg.num_codes, cfg.code_dim, cfg.rvq_levels, rotation=care["gradient"] == "rotation"
        )
    if kind == "lfq":
        return quantisers.LookupFreeQuantizer(cfg.code_dim, cfg.lfq_temperature)
    if kind == "wta":
        return bottlenecks.WinnerTakeAll(cfg.lifetime_rate, cfg.spatial_sparsity)
    match = _choice(cfg, "prior_match", bottlenecks.PRIOR_MATCHES, "none")
    kernel = _choice(cfg, "mmd_kernel", bottlenecks.MMD_KERNELS, "imq")
    return bottlenecks.Deterministic(match, kernel, tuple(cfg.discriminator_widths))


def _autoencoder(cfg: ml_collections.ConfigDict) -> autoencoder.Autoencoder:
    cfg = part_sizes(cfg)
    encoder_kind, bottleneck_kind, decoder_kind = structure(cfg)
    if bottleneck_kind in QUANTISERS:
        _check_code_dim(cfg, encoder_kind, bottleneck_kind)
    bottleneck = _bottleneck(cfg, bottleneck_kind)
    encoder = _encoder(cfg, encoder_kind, bottleneck.dense_heads)  # a tied decoder shares it
    decoder = _decoder(cfg, decoder_kind, encoder, encoder_kind, bottleneck)
    prior_inputs = None
    if bottleneck.drawn_prior:
        prior_inputs = posteriors.PseudoInputs(cfg.pseudo_inputs, tuple(cfg.image_shape))
    return autoencoder.Autoencoder(
        encoder=encoder,
        decoder=decoder,
        bottleneck=bottleneck,
        learned_variance=cfg.get("learned_variance", False),
        prior_inputs=prior_inputs,
        **_hamiltonian(cfg, bottleneck_kind),
    )


def _hamiltonian(cfg: ml_collections.ConfigDict, bottleneck_kind: str) -> dict:
    """The HVAE's fields (`model.leapfrog_steps` > 0), checked; none for any other model."""
    steps = cfg.get("leapfrog_steps", 0)
    if not steps:
        return {}
    if bottleneck_kind != "gaussian" or steps < 0:
        raise ValueError(
            f"model.leapfrog_steps={steps} moves a gaussian posterior's draw: it needs "
            f"model.bottleneck='gaussian' (not {bottleneck_kind!r}) and a positive count"
        )
    step_size, tempering = cfg.leapfrog_step_size, cfg.tempering
    if not step_size > 0 or not 0 < tempering < 1:
        raise ValueError(
            f"model.leapfrog_step_size={step_size} must be positive and model.tempering="
            f"{tempering} (the momentum's initial inverse temperature) in (0, 1)"
        )
    likelihood = _choice(cfg, "likelihood", ("bernoulli", "gaussian"), "bernoulli")
    if likelihood == "gaussian" and not cfg.get("learned_variance", False):
        raise ValueError(
            "an HVAE's potential needs the gaussian likelihood's variance: set "
            "model.learned_variance=True, or use model.likelihood='bernoulli'"
        )
    return {"leapfrog_steps": steps, "leapfrog_step_size": step_size,
            "tempering": tempering, "likelihood": likelihood}  # fmt: skip


def assigned_groups(cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
    """Parameter groups set by assignment rather than descent: an EMA codebook, which the
    optimiser moves by its whole gradient (SGD at rate 1) onto its running mean."""
    if cfg.name in PRESETS and structure(cfg)[1] == "vq" and cfg.codebook == "ema":
        return ("codebook",)
    if cfg.name == "sae" and cfg.bottleneck == "batchtopk":
        return sae.ASSIGNED
    return ()


def _classifier(cfg: ml_collections.ConfigDict) -> nn.Module:
    if cfg.head_input not in classifier.HEAD_INPUTS:
        raise ValueError(
            f"unknown model.head_input {cfg.head_input!r}; choose one of {classifier.HEAD_INPUTS}"
        )
    return classifier.Classifier(build(cfg.autoencoder), cfg.num_classes, cfg.head_input)


def _code_prior(cfg: ml_collections.ConfigDict) -> nn.Module:
    autoencoder_cfg = cfg.autoencoder.copy_and_resolve_references()
    if autoencoder_cfg.name not in PRESETS or structure(autoencoder_cfg)[1] not in PRIOR_CODES:
        raise ValueError(
            "a code prior models one codebook index per code vector: model.autoencoder needs "
            f"a bottleneck of {PRIOR_CODES} (an rvq code has one per level; the shipped config "
            "vqvae_prior wraps vqvae's model)"
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
    return code_prior.CodePrior(
        autoencoder, tuple(code.shape[1:]), cfg.embed_dim, cfg.num_layers, cfg.num_heads
    )


def _token_prior(cfg: ml_collections.ConfigDict) -> nn.Module:
    if cfg.embed_dim % cfg.num_heads:
        raise ValueError(
            f"model.embed_dim={cfg.embed_dim} must be a multiple of model.num_heads={cfg.num_heads}"
        )
    return code_prior.TokenPrior(
        cfg.num_codes, cfg.length, cfg.embed_dim, cfg.num_layers, cfg.num_heads
    )


def _sparse_autoencoder(cfg: ml_collections.ConfigDict) -> nn.Module:
    if cfg.bottleneck not in sae.ACTIVATIONS:
        raise ValueError(
            f"unknown model.bottleneck {cfg.bottleneck!r} of a sparse autoencoder; choose one "
            f"of {sae.ACTIVATIONS}"
        )
    if len(cfg.image_shape) != 1:
        raise ValueError(
            f"a sparse autoencoder reads vectors (N, D), not images of shape "
            f"{tuple(cfg.image_shape)}: train it on a run's activations (data.activations) or "
            "an .npy/.npz of vectors (data.path)"
        )
    cfg = sae_sizes(cfg)
    if cfg.bottleneck in ("topk", "batchtopk") and cfg.k > cfg.latents:
        raise ValueError(f"model.k={cfg.k} keeps more latents than the {cfg.latents} there are")
    return sae.SparseAutoencoder(
        input_dim=cfg.image_shape[0],
        latents=cfg.latents,
        activation=cfg.bottleneck,
        k=cfg.k,
        aux_k=cfg.aux_k,
        dead_after=cfg.dead_after,
        threshold_decay=cfg.threshold_decay,
        threshold_init=cfg.threshold_init,
        bandwidth=cfg.bandwidth,
        variance=cfg.data_variance,
    )


def sae_sizes(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of sparse autoencoder config `cfg` with the sizes it leaves unset: `expansion`
    latents per input dimension, and AuxK's `aux_k` half the input dimension (Gao et al.'s)."""
    cfg = cfg.copy_and_resolve_references()
    with cfg.unlocked():
        if cfg.latents is None:
            cfg.latents = cfg.expansion * cfg.image_shape[0]
        if cfg.aux_k is None:
            cfg.aux_k = max(1, cfg.image_shape[0] // 2)
    return cfg


MODELS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    **{name: _autoencoder for name in PRESETS},
    "classifier": _classifier,  # a softmax head on the code (or output) of `model.autoencoder`
    "code_prior": _code_prior,  # a causal transformer over the codes of `model.autoencoder`, a VQ-VAE
    "sae": _sparse_autoencoder,  # a sparse dictionary of vectors (aejax/models/sae.py)
    "token_prior": _token_prior,  # a causal transformer over token sequences given as data
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
    """A copy of model config `cfg` with the data's image shape, a classifier's classes, the
    training set's size (which beta-TCVAE's estimator reads), and the part sizes it leaves
    unset (`part_sizes`), so that the run's config.json records what was trained.

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
    if cfg.name == "sae":
        return sae_sizes(cfg)
    return part_sizes(cfg) if cfg.name in PRESETS else cfg


def init_from_data(
    cfg: ml_collections.ConfigDict, variables: dict, train_x: jax.Array, seed: int = 0
) -> dict:
    """The model's variables (its "params" and collections), with those that start from the
    training data set from it.

    "pixel_means" (`cfg.output_bias`) sets an MLP decoder's output bias to the logits of the
    training pixels' means, the setup of the IWAE paper (Importance Weighted Autoencoders): the
    decoder starts near the average image, not at grey. Means are clipped to [1e-3, 1 - 1e-3]
    so that always-black pixels get a finite bias. A sparse autoencoder's pre-encoder bias
    always starts at the training vectors' mean. A codebook with `codebook_init="kmeans"`
    starts at k-means centroids (`_kmeans_codebook`).
    """
    params = variables["params"]
    if cfg.name == "sae":
        return {**variables, "params": {**params, "pre_bias": jnp.mean(train_x, axis=0)}}
    quantiser = cfg.name in PRESETS and structure(cfg)[1] in ("vq", "rvq")
    if quantiser and cfg.get("codebook_init", "uniform") == "kmeans":
        variables = _kmeans_codebook(cfg, variables, train_x, seed)
    how = cfg.output_bias
    if how is None:
        return variables
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
    decoder = {"mlp": {**layers, last: {**layers[last], "bias": bias}}}
    return {**variables, "params": {**variables["params"], "decoder": decoder}}


def _kmeans_codebook(
    cfg: ml_collections.ConfigDict, variables: dict, train_x: jax.Array, seed: int
) -> dict:
    """The codebook as k-means centroids of the vectors the initial encoder makes of the first
    `codebooks.KMEANS_IMAGES` training images; a residual codebook level by level, each on
    what the levels before it leave. An EMA codebook's moving sums start there too."""
    model = build(cfg)
    x = as_float(train_x[: codebooks.KMEANS_IMAGES])
    h = model.apply(variables, x, method=lambda module, x: module.encoder(x))
    residual_NxD = h.reshape(-1, cfg.code_dim)
    if cfg.get("codebook_distance", "euclidean") == "cosine":
        residual_NxD = codebooks.normalised(residual_NxD)
    rng = random_streams.stream(seed, "codebook_init")
    levels = cfg.rvq_levels if structure(cfg)[1] == "rvq" else 1
    centroids = []
    for level in range(levels):
        level_rng = jax.random.fold_in(rng, level)
        centroids.append(codebooks.kmeans(level_rng, residual_NxD, cfg.num_codes))
        residual_NxD = residual_NxD - centroids[-1][codebooks.nearest(residual_NxD, centroids[-1])]
    codebook = jnp.stack(centroids) if levels > 1 else centroids[0]
    variables = {**variables, "params": {**variables["params"], "codebook": codebook}}
    if bottlenecks.EMA_COLLECTION in variables:
        ema = variables[bottlenecks.EMA_COLLECTION]
        variables[bottlenecks.EMA_COLLECTION] = {**ema, "sums": codebook * ema["counts"][:, None]}
    return variables
