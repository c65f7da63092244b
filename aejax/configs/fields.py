"""Defaults every config starts from, and loading a config by name or path.

Every field the code reads is declared here or in the config of the model that reads it, so
any of them can be overridden (`--config.loss.kl_warmup_steps=100`, `aejax.fit(...,
loss__kl_warmup_steps=100)`) and a misspelt one is an error: loaded configs are locked.
Optional numbers are typed placeholders (None until set), so an override parses as their type.
"""

import copy

import ml_collections
from ml_collections import config_dict


def base() -> ml_collections.ConfigDict:
    """Seed, data, optimiser, loop, checkpoints, and the fields of `model` and `loss` that
    every model shares; a model's config adds its own and overrides what differs."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # the only source of randomness: init, shuffling and noise derive from it
    for add_group in GROUPS:
        add_group(config)
    return config


def _data(config: ml_collections.ConfigDict) -> None:
    """Which dataset, how its files are read, and what of it a run trains on."""
    config.data = ml_collections.ConfigDict()
    config.data.name = "mnist5k"  # mnist5k (embedded), fashion_mnist, mnist, or a TFDS dataset
    config.data.path = ""  # an .npz file or a folder of images; when set, `name` is unused (empty)
    # Image files and TFDS images centre-cropped and resized to this side (celeb_a: 64 if unset).
    config.data.image_size = config_dict.placeholder(int)
    config.data.test_fraction = 0.1  # held out as test split of a `path` (or arrays) without one
    config.data.max_pixels = 64_000_000  # a `path` folder's image files: larger ones are refused
    config.data.skip_bad_images = False  # True: such files, and unreadable ones, are left out
    config.data.binarize = "none"  # none, static, dynamic (aejax/data/binarize.py)
    config.data.label_fraction = config_dict.placeholder(float)  # a stratified labelled subset
    config.data.subset_seed = 0  # which subset: the same for every model and seed
    config.data.stream = "auto"  # training batches read from disk: auto, never, always (stream.py)
    config.data.device_bytes_budget = 4 * 2**30  # "auto" streams a training set bigger than this
    config.data.read_threads = 4  # streaming: Grain threads reading and parsing batches ahead
    # Vectors for a sparse autoencoder: a run's workdir, or a shipped config trained once in
    # runs/<config>_<dataset>, whose layer's outputs on this data's images are the data
    config.data.activations = ""
    config.data.layer = config_dict.placeholder(int)  # None: the code; 0, 1, ...: dense layers
    config.data.normalize = "mean_square"  # vectors scaled to mean squared norm D; "none": as given
    config.data.vector_scale = config_dict.placeholder(float)  # that scale, set from the data


def _opt(config: ml_collections.ConfigDict) -> None:
    """The optimiser and its learning-rate schedule; what trains."""
    config.opt = ml_collections.ConfigDict()
    config.opt.name = "adam"  # adam, adamw, sgd
    config.opt.lr = 1e-3
    config.opt.lr_boundaries = ()  # steps where lr is multiplied by lr_decay; () keeps it constant
    config.opt.lr_decay = 0.1
    config.opt.trainable = ()  # parameter path prefixes that train; () trains every parameter
    # Optimisers of their own for top-level parameter groups, one group each, e.g.
    # parts.discriminator = {name, lr}; every other parameter follows name and lr above.
    config.opt.parts = ml_collections.ConfigDict()


def _train(config: ml_collections.ConfigDict) -> None:
    """Batches, epochs, compiled chunks, checkpoints, and where a run starts from."""
    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 200
    config.train.epochs = 20
    # Steps per compiled lax.scan call (capped at an epoch); 1 dispatches single steps.
    config.train.chunk = 400
    config.train.eval_batch_size = 1000
    # Devices along the mesh's "model" axis, which split a sparse autoencoder's latents (a
    # dictionary too big for one device); the batch is split over the devices / model_parallel
    # groups of them. It must divide the device count.
    config.train.model_parallel = 1
    config.train.save_every_steps = 1000
    config.train.keep_checkpoints = 3
    config.train.init_from = ""  # a fresh run starts from this run directory's parameters


def _model(config: ml_collections.ConfigDict) -> None:
    """The model's structure and the sizes and options of its parts."""
    config.model = ml_collections.ConfigDict()
    config.model.name = ""  # set by the model's config: a name in aejax.models.factory.MODELS
    config.model.image_shape = (28, 28, 1)
    config.model.kernel_init = "lecun_normal"  # flax's default; a name in models.INITIALIZERS
    # A deterministic code's activation: an mlp encoder's last layer, a conv encoder's last
    # layer ("linear" lets a VQ code take any sign: choosing model.bottleneck=vq by override
    # sets it, unless the override sets it too); a gaussian's heads are linear.
    config.model.code_activation = "relu"
    config.model.output_bias = config_dict.placeholder(str)  # "pixel_means": the mean image
    # The structure (models/factory.py): unset, model.name's defaults (factory.PRESETS).
    config.model.encoder = config_dict.placeholder(str)  # mlp, conv, resnet
    # deterministic, gaussian, vq, wta, fsq, rvq, lfq. Chosen by an override
    # (--config.model.bottleneck=vq, model__bottleneck="vq"), a bottleneck also sets the fields
    # it needs to learn that the override leaves unset (bottlenecks.DEFAULTS): vq sets
    # loss.reduction="sum" and model.code_activation="linear", gaussian loss.reduction="sum",
    # whatever the config had; the quantisers theirs (see DEFAULTS).
    config.model.bottleneck = config_dict.placeholder(str)
    config.model.decoder = config_dict.placeholder(str)  # mlp, tied, nearest, resize, transpose
    config.model.decoder_widths = config_dict.placeholder(tuple)  # mlp decoder; unset: mirror
    # The parts' sizes, unset where the config's own parts do not read them. A part swapped in
    # (--config.model.encoder=resnet) that reads an unset one gets it derived from the other
    # parts (models.factory.part_sizes), recorded in the run's config.json; or set it too.
    config.model.encoder_widths = config_dict.placeholder(tuple)  # mlp encoder, code width last
    config.model.activation = "relu"  # mlp encoder and decoder, between layers
    config.model.encoder_features = config_dict.placeholder(tuple)  # conv, resnet: channels
    config.model.decoder_features = config_dict.placeholder(tuple)  # conv decoders: channels
    config.model.latent_dim = config_dict.placeholder(int)  # gaussian: the code's size
    config.model.prior_match = "none"  # deterministic codes to N(0, I): none, mmd, adversarial
    config.model.mmd_kernel = "imq"  # imq, rbf
    config.model.discriminator_widths = (64, 64)  # the adversarial AE's and FactorVAE's discriminator
    config.model.num_codes = 64  # vq, rvq (each level): codebook entries
    config.model.code_dim = 4  # vq, rvq, lfq (bits): the code is cut into vectors of this size
    config.model.codebook = "loss"  # vq: kept by its loss term ("loss") or moving averages ("ema")
    config.model.ema_decay = 0.99  # vq with codebook "ema"
    # vq, rvq: the codebook's care (aejax/models/codebooks.py). Its start: "uniform" draws, or
    # "kmeans" of the first training images' encodings; the encoder's gradient past it:
    # "straight_through" or "rotation" (the rotation trick); vq alone: entries compared by
    # "euclidean" or "cosine" distance, and with codebook "ema", entries unused for this many
    # steps restarted at vectors of the batch (0: never)
    config.model.codebook_init = "uniform"
    config.model.codebook_gradient = "straight_through"
    config.model.codebook_distance = "euclidean"
    config.model.dead_code_steps = 0
    config.model.rvq_levels = 4  # rvq: quantisers in sequence, each with num_codes x code_dim
    # fsq: the levels of each dimension of a vector (the code cut into vectors of as many
    # dimensions); their product, 1000 here, is the implied codebook's size (the paper's)
    config.model.fsq_levels = (8, 5, 5, 5)
    config.model.lfq_temperature = 0.1  # lfq: of the soft assignment its entropy terms read
    config.model.lifetime_rate = 0.05  # wta: the fraction of a batch each unit is active for
    config.model.spatial_sparsity = True  # wta: one winner per feature map and image
    config.model.total_correlation = False  # gaussian: estimate the codes' total correlation "tc"
    config.model.tc_estimator = "minibatch"  # its estimator: minibatch (beta-TCVAE), discriminator
    config.model.flow = "none"  # gaussian: a flow on its draw: none, planar, iaf (posteriors.py)
    config.model.flow_layers = 2  # its steps
    config.model.prior = "normal"  # gaussian: normal, vamp (the VampPrior)
    config.model.pseudo_inputs = 50  # vamp: its components' pseudo-inputs (Pythae's default)
    config.model.dataset_size = config_dict.placeholder(int)  # set from the data


def _loss(config: ml_collections.ConfigDict) -> None:
    """The objective, the likelihood, and the weights of its terms."""
    config.loss = ml_collections.ConfigDict()
    config.loss.objective = "reconstruction"  # reconstruction, classification, layerwise
    config.loss.likelihood = "bernoulli"  # bernoulli (BCE on logits), gaussian (MSE or a density)
    # mean: per pixel; sum: nats per image, which the per-image terms of a VQ or gaussian
    # bottleneck need (choosing either by override sets it, unless the override sets it too)
    config.loss.reduction = "mean"
    config.loss.variance = config_dict.placeholder(float)  # a gaussian likelihood's fixed variance
    config.loss.kl_weight = 1.0  # VAEs: the KL term's weight
    config.loss.kl_warmup_steps = 0  # VAEs: the KL weight grows linearly from 0 over these steps
    config.loss.iwae_samples = 1  # VAEs: importance samples per image; 1 is the ELBO
    config.loss.iwae_groups = 1  # MIWAE: the mean of this many bounds of iwae_samples each
    config.loss.ciwae_beta = 0.0  # CIWAE: beta * ELBO + (1 - beta) * the bound, same samples
    config.loss.piwae = False  # PIWAE: the decoder learns from the bound of all the samples
    # Weights of bottleneck terms (aejax/models/bottlenecks.py); "codebook" and "discriminator" have 1.
    config.loss.commitment_weight = 0.25  # vq, rvq, lfq: beta of |h - sg(q)|^2
    config.loss.entropy_weight = 0.1  # lfq: each code's entropy, made certain
    config.loss.diversity_weight = 1.0  # lfq: log K - the batch's code entropy, spread out
    config.loss.mmd_weight = 10.0  # WAE-MMD: lambda
    config.loss.adversarial_weight = 1.0  # adversarial AE: the encoder's term to fool the critic
    config.loss.tc_weight = 0.0  # beta-TCVAE: beta - 1, added to the KL's weight on the TC
    config.loss.corruption = ml_collections.ConfigDict()
    config.loss.corruption.name = "none"  # none, gaussian, masking, salt_and_pepper (+ its setting)
    config.loss.corruption.at_eval = False  # True: test metrics on corrupted inputs too
    config.loss.regularizers = ml_collections.ConfigDict()  # one group per penalty, with its weight
    config.loss.layer = 0  # the layer a greedy pretraining phase trains (set by `aejax pretrain`)


# The groups `base` adds, in order: `aejax show` reads their comments from their source.
GROUPS = (_data, _opt, _train, _model, _loss)


def sae_model(config: ml_collections.ConfigDict, activation: str) -> None:
    """Gives `config` the model group of a sparse autoencoder (aejax/models/sae.py) sparse by
    `activation`, in place of the image models' group."""
    config.model = ml_collections.ConfigDict()
    config.model.name = "sae"
    config.model.image_shape = (1024,)  # the vectors' (D,): set from the data
    config.model.bottleneck = activation  # relu, topk, batchtopk, jumprelu, gated
    config.model.latents = config_dict.placeholder(int)  # the dictionary's size; unset: expansion x D
    config.model.expansion = 16  # latents per input dimension when `latents` is unset
    config.model.k = 32  # topk, batchtopk: latents kept per vector
    config.model.aux_k = config_dict.placeholder(int)  # topk, batchtopk: AuxK's dead latents; unset: D / 2
    config.model.dead_after = 50_000  # training vectors without firing after which a latent is dead
    config.model.threshold_decay = 0.99  # batchtopk: running mean of the smallest kept activation
    # jumprelu: each latent's first threshold. The paper's 0.001 (and bandwidth) left L0 at 7,276
    # of 16,384 after 3 epochs of mnist5k (FVU 2.4): on vectors of mean squared norm D the
    # pre-activations are of order 1, and a log threshold moving about lr a step climbs from
    # 0.001 in thousands of steps. With these two, L0 23 after 5 epochs.
    config.model.threshold_init = 1.0
    config.model.bandwidth = 0.1  # jumprelu: the straight-through estimators' kernel width
    config.model.data_variance = config_dict.placeholder(float)  # FVU's denominator: set from the data


def classifier_config(
    autoencoder_config: ml_collections.ConfigDict,
    *,
    init_from: str = "",
    trainable: tuple[str, ...] = (),
    label_fraction: float = 1.0,
    epochs: int | None = None,
    head_input: str = "code",
) -> ml_collections.ConfigDict:
    """The config of a classifier on `autoencoder_config`'s model, same data, optimiser, seed.

    `init_from`: the autoencoder's run ("" trains from scratch); `trainable=("head",)` freezes
    the encoder; `label_fraction` < 1 trains on a stratified subset of the labels;
    `head_input="decoded"` puts the head on the reconstruction instead of the code.
    """
    config = base()  # its own model and loss; the rest copied from the autoencoder's
    config.seed = autoencoder_config.seed
    for group in ("data", "opt", "train"):
        config[group] = copy.deepcopy(autoencoder_config[group])
    config.data.label_fraction = label_fraction
    config.data.subset_seed = 0  # the same labelled subset for every model and seed
    config.opt.trainable = tuple(trainable)
    config.train.init_from = str(init_from)
    if epochs is not None:
        config.train.epochs = epochs
    config.model.name = "classifier"
    config.model.num_classes = 10  # training sets it from the data's labels
    config.model.head_input = head_input  # "code", or "decoded": the flattened reconstruction
    config.model.autoencoder = copy.deepcopy(autoencoder_config.model)
    config.loss.objective = "classification"  # softmax cross-entropy, accuracy reported
    return config
