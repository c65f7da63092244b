"""`factory.build`: the model a config describes. Any encoder with any bottleneck and decoder
(every possible pair trains a step on real images of three shapes; only the pairs a tied decoder
cannot make are refused, saying why; pairs swapped into shipped configs learn codes that depend
on their input), the shipped models' shapes and parameter counts, parts and fields chosen by
config (refused, naming the field, when unknown), the part sizes a config leaves unset derived
from the other parts, and biases set from the data."""

import concurrent.futures
import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import load_config

import aejax
from aejax import configs, data
from aejax.configs import fields
from aejax.data import sources
from aejax.evaluation import figures
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training.optimizers import make_optimizer
from aejax.training.state import TrainState, create_state
from aejax.training.step import make_train_step

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]
SHAPE_IDS = ["28x28x1", "32x32x3", "64x64x3"]
PAIRS = list(itertools.product(factory.ENCODERS, factory.BOTTLENECKS, factory.DECODERS))
ENCODERS = ["mlp", "conv", "resnet"]
BOTTLENECKS = ["deterministic", "gaussian", "vq", "vq_ema", "wta", "mmd", "adversarial", "fsq",
               "rvq", "lfq"]  # fmt: skip
DECODERS = ["mlp", "tied", "nearest", "resize", "transpose"]


def composed(encoder, bottleneck, decoder, image_shape=(28, 28, 1)) -> ml_collections.ConfigDict:
    """A tiny config of the chosen parts, every part's fields set."""
    config = fields.base()
    m = config.model
    m.name, m.encoder, m.decoder, m.image_shape = "autoencoder", encoder, decoder, image_shape
    m.bottleneck = {"vq_ema": "vq", "mmd": "deterministic", "adversarial": "deterministic"}.get(
        bottleneck, bottleneck
    )
    m.codebook = "ema" if bottleneck == "vq_ema" else "loss"
    m.prior_match = bottleneck if bottleneck in ("mmd", "adversarial") else "none"
    m.encoder_widths, m.activation, m.code_activation = (16, 8), "relu", "linear"
    m.encoder_features, m.decoder_features = (8, 8), (8, 8)
    m.latent_dim, m.num_codes, m.code_dim, m.discriminator_widths = 4, 16, 4, (8,)
    m.lifetime_rate = 0.5
    return config


def impossible(encoder: str, bottleneck: str, decoder: str) -> bool:
    """A tied decoder runs an mlp encoder's kernels backwards from a code of their width."""
    return decoder == "tied" and (encoder != "mlp" or bottleneck == "gaussian")


def _combinations():
    for encoder, bottleneck, decoder in itertools.product(ENCODERS, BOTTLENECKS, DECODERS):
        if not impossible(encoder, bottleneck, decoder):
            yield encoder, bottleneck, decoder


@pytest.mark.parametrize("image_shape", SHAPES[:2], ids=SHAPE_IDS[:2])
@pytest.mark.parametrize("encoder,bottleneck,decoder", list(_combinations()))
def test_any_encoder_pairs_with_any_decoder_through_any_bottleneck(
    encoder, bottleneck, decoder, image_shape
):
    """Shapes only (traced, not run): logits of the image's shape, a code per image, terms."""
    model = factory.build(composed(encoder, bottleneck, decoder, image_shape).model)
    x = jnp.zeros((4, *image_shape))
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    variables = jax.eval_shape(model.init, rngs, x)
    logits, aux = jax.eval_shape(
        lambda v: model.apply(v, x, train=True, rngs={"noise": jax.random.key(2)}, mutable=True)[0],
        variables,
    )
    encoding = jax.eval_shape(lambda v: model.apply(v, x, method="encode"), variables)
    assert logits.shape == x.shape
    assert encoding.code.shape[0] == 4
    expected_terms = {
        "deterministic": set(),
        "wta": set(),
        "gaussian": {"kl"},
        "vq": {"codebook", "commitment"},
        "vq_ema": {"codebook", "commitment"},
        "mmd": {"mmd"},
        "adversarial": {"discriminator", "adversarial"},
        "fsq": set(),
        "rvq": {"codebook", "commitment"},
        "lfq": {"commitment", "entropy", "diversity"},
    }[bottleneck]
    assert set(aux["terms"]) == expected_terms


def test_an_unknown_part_is_refused_naming_the_choices():
    config = composed("mlp", "deterministic", "mlp")
    config.model.bottleneck = "vqq"
    with pytest.raises(ValueError, match=r"unknown bottleneck 'vqq' .*'vq'"):
        factory.build(config.model)


def test_presets_give_the_parts_and_the_fields_override_them():
    """`model.name` picks (encoder, bottleneck, decoder); each field set replaces its part, and
    only an EMA codebook is a parameter group set by assignment."""
    assert factory.structure(load_config("vae").model) == ("mlp", "gaussian", "mlp")
    assert factory.structure(load_config("tied").model) == ("mlp", "deterministic", "tied")
    conv = load_config("conv").model
    assert factory.structure(conv) == ("conv", "deterministic", conv.upsampling)
    conv.bottleneck, conv.decoder = "wta", "transpose"
    assert factory.structure(conv) == ("conv", "wta", "transpose")
    assert factory.assigned_groups(load_config("vqvae_ema").model) == ("codebook",)
    assert factory.assigned_groups(load_config("vqvae").model) == ()
    assert factory.assigned_groups(load_config("vae").model) == ()


def test_a_part_swapped_in_takes_derived_sizes_and_any_config_can_set_them():
    config = load_config("vae")
    config.model.encoder = "resnet"
    images = np.zeros((1, 28, 28, 1), np.float32)
    encoder = create_state(config, images).params["encoder"]  # factory.CONV_FEATURES
    assert [encoder[f"skip{i}"]["kernel"].shape[-1] for i in range(3)] == [16, 32, 32]
    config.model.encoder_features = (4, 8)
    state = create_state(config, images)
    assert [state.params["encoder"][f"skip{i}"]["kernel"].shape[-1] for i in range(2)] == [4, 8]
    assert "mu_head" in state.params


# --- every pair trains, from any shipped config ---------------------------------------------


def tiny(encoder: str, bottleneck: str, decoder: str, image_shape=(28, 28, 1)):
    """A config of the three parts, chosen by override as a user would, every part 8 wide (an
    mlp decoder too: one dense layer from a 64x64 image's map would have 25M weights), trained
    by SGD, whose step compiles faster than Adam's."""
    config = fields.base()
    config.model.name = "autoencoder"
    return configs.override(
        config, model__encoder=encoder, model__bottleneck=bottleneck, model__decoder=decoder,
        model__image_shape=image_shape, model__encoder_widths=(8, 8), model__decoder_widths=(8,),
        model__encoder_features=(8, 8), model__decoder_features=(8, 8), model__latent_dim=8,
        model__num_codes=8, model__lifetime_rate=0.5, opt__name="sgd",
    )  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    """Eight mnist5k test digits at each shape in SHAPES, resized; the colour ones tinted per
    channel, since no colour dataset is available offline."""
    x = jnp.asarray(data.load("mnist5k", "test")[0][:8])  # in [0, 1]
    tint = jnp.asarray([1.0, 0.7, 0.4])
    return {
        (h, w, c): jax.image.resize(x, (8, h, w, 1), "linear") * tint[:c] for h, w, c in SHAPES
    }


def _state(config, model, variables) -> TrainState:
    """A train state whose parameters numpy draws at LeCun's scale (biases zero): flax's
    initialisers compile once per parameter shape, which over these 153 models took longer
    than their train steps."""
    rng = np.random.default_rng(0)

    def draw(leaf):
        if leaf.ndim < 2:
            return np.zeros(leaf.shape, leaf.dtype)
        fan_in = np.float32(np.prod(leaf.shape[:-1]))
        return rng.standard_normal(leaf.shape, np.float32) / np.sqrt(fan_in)

    tx = make_optimizer(config.opt, factory.assigned_groups(config.model))
    params = jax.tree.map(draw, variables["params"])
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def _every_step(x: jax.Array):
    """The pairs that can be made, their train states for images like `x`, and one compiled
    program of every pair's step on `x` (lowered, not yet compiled), asserting each model's
    logits have the image's shape."""
    pairs = [pair for pair in PAIRS if not impossible(*pair)]
    states, steps = [], []
    for pair in pairs:
        config = tiny(*pair, x.shape[1:])
        model = factory.build(config.model)
        rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
        (logits, _), variables = jax.eval_shape(model.init_with_output, rngs, x)
        assert logits.shape == x.shape, pair
        assert set(variables) == {"params"}, pair
        states.append(_state(config, model, variables))
        steps.append(make_train_step(autoencoding.make_loss_fn(model, config.loss)))
    rng = jax.random.key(2)
    # Without XLA's backend optimisations: a quarter less compilation, and one step's numbers
    # need none of them.
    every_step = jax.jit(
        lambda states: [step(s, x, rng) for step, s in zip(steps, states)],
        compiler_options={"xla_backend_optimization_level": 0},
    )
    return pairs, states, every_step.lower(states)


@pytest.fixture(scope="module")
def every_pair_stepped(digits):
    """{image shape: (pairs, states before, (states, metrics) after one step)}. Each shape's
    program compiles in a thread of its own while the next shape's is traced: XLA compiles a
    program on one thread, without Python's lock, so the grid keeps both cores busy."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = {}
        for shape in SHAPES:
            pairs, states, lowered = _every_step(digits[shape])
            jobs[shape] = pairs, states, pool.submit(lowered.compile)
        return {
            shape: (pairs, states, compiling.result()(states))
            for shape, (pairs, states, compiling) in jobs.items()
        }


@pytest.mark.parametrize("image_shape", SHAPES, ids=SHAPE_IDS)
def test_every_possible_pair_trains_a_step_on_real_images(image_shape, every_pair_stepped):
    """Logits of the image's shape, and one step of every pair, compiled together, giving a
    finite loss and finite parameters that moved."""
    pairs, states, stepped = every_pair_stepped[image_shape]
    for pair, state, (new, metrics) in zip(pairs, states, stepped, strict=True):
        assert np.isfinite(metrics["loss"]), (pair, metrics)
        chex.assert_tree_all_finite(new.params)
        moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.params, new.params)
        assert any(jax.tree.leaves(moved)), pair


def test_only_the_pairs_a_tied_decoder_cannot_make_are_refused_saying_why():
    refused = {}
    for pair in PAIRS:
        try:
            factory.build(tiny(*pair).model)
        except ValueError as error:
            refused[pair] = str(error)
    assert set(refused) == {pair for pair in PAIRS if impossible(*pair)}
    for (encoder, bottleneck, _), message in refused.items():
        if encoder != "mlp":
            assert message == (
                f"a tied decoder mirrors an mlp encoder's kernels; model.encoder={encoder!r} has "
                "none: use model.decoder='mlp' or 'nearest', or model.encoder='mlp'"
            )
        else:
            assert message.startswith("a tied decoder mirrors an mlp encoder's kernels from its")
            assert f"a {bottleneck!r} bottleneck's heads give a code of their own" in message
            assert message.endswith("use model.decoder='mlp', or model.bottleneck='deterministic'")


def _swapped(name: str, **parts):
    """Shipped config `name`'s model with `parts` chosen, sized as a run records it."""
    config = configs.override(configs.load(name), **{f"model__{k}": v for k, v in parts.items()})
    return factory.fit_to_data(config.model, (28, 28, 1), None)


def test_part_sizes_a_config_leaves_unset_are_derived_from_the_other_parts():
    nearest_after_mlp = _swapped("vae", decoder="nearest")
    assert nearest_after_mlp.decoder_features == factory.VECTOR_DECODER_FEATURES
    assert nearest_after_mlp.encoder_widths == (500, 500)  # set by vae: kept
    resnet = _swapped("vae", encoder="resnet", decoder="transpose")
    assert resnet.encoder_features == factory.CONV_FEATURES
    assert resnet.decoder_features == tuple(reversed(factory.CONV_FEATURES))  # the mirror
    assert _swapped("conv", decoder="transpose").decoder_features == (8, 8, 16)  # conv's own
    mirrored = _swapped("mlp", encoder="conv", decoder="resize", decoder_features=(8, 4))
    assert mirrored.encoder_features == (4, 8)
    assert _swapped("mlp", bottleneck="gaussian").latent_dim == 32  # mlp's code width
    assert _swapped("conv", bottleneck="gaussian").latent_dim == factory.MAP_LATENT_DIM
    mlp_in_conv_vae = _swapped("conv_vae", encoder="mlp")
    assert (mlp_in_conv_vae.encoder_widths, mlp_in_conv_vae.latent_dim) == (factory.MLP_WIDTHS, 16)


def test_a_shipped_autoencoder_records_the_model_it_always_recorded():
    """Its parts read no unset size, so fitting it to the data fills none: a workdir it made
    before sizes were derived resumes (its config.json holds the same nulls)."""
    for name in configs.names():
        model = configs.load(name).model
        if model.name in factory.PRESETS:
            assert factory.fit_to_data(model, model.image_shape, None) == model, name


def test_a_vq_code_dim_that_does_not_divide_the_code_names_what_to_set():
    with pytest.raises(ValueError) as error:
        factory.build(_swapped("stacked", bottleneck="vq"))  # a 150-unit code
    assert str(error.value) == (
        "a vq bottleneck cuts the code into vectors of model.code_dim=4, which does not divide "
        "its last axis, model.encoder_widths[-1]=150: set model.code_dim=3 (or another divisor "
        "of 150), or model.encoder_widths to end in a multiple of 4"
    )
    factory.build(_swapped("stacked", bottleneck="vq", code_dim=3))


def test_a_quantiser_whose_vectors_do_not_divide_the_code_names_what_to_set():
    """FSQ's vectors have a dimension per level count; LFQ's entropy term enumerates its
    2^code_dim entries, so its vectors are at most 12 bits."""
    with pytest.raises(ValueError) as error:
        factory.build(_swapped("stacked", bottleneck="fsq"))
    assert str(error.value) == (
        "an fsq bottleneck cuts the code into vectors of len(model.fsq_levels)=4, which does not "
        "divide its last axis, model.encoder_widths[-1]=150: set model.fsq_levels to 3 level "
        "counts (or another divisor of 150), or model.encoder_widths to end in a multiple of 4"
    )
    factory.build(_swapped("stacked", bottleneck="fsq", fsq_levels=(7, 5, 5)))
    with pytest.raises(ValueError, match=r"model.code_dim=16 is over 12; set one that divides"):
        factory.build(_swapped("vqvae", bottleneck="lfq", code_dim=16))
    assert factory.build(_swapped("vqvae", bottleneck="lfq")).bottleneck.code_dim == 4


def _spread(images: np.ndarray) -> float:
    """How far images lie from their mean image, per pixel: 0 when all are alike."""
    return float(np.mean(np.abs(images - images.mean(axis=0))))


SWAPS = [  # a sample of pairs, each swapped into a shipped config of another structure
    ("mlp", {"encoder": "conv", "decoder": "transpose"}),
    ("conv", {"encoder": "mlp", "bottleneck": "gaussian", "decoder": "resize"}),
    ("vae", {"encoder": "resnet", "bottleneck": "vq", "decoder": "nearest"}),
    ("conv_vae", {"encoder": "mlp", "bottleneck": "vq", "decoder": "tied"}),
    ("vae", {"encoder": "conv", "bottleneck": "wta", "decoder": "mlp"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,parts", SWAPS, ids=[f"{n}-{'-'.join(p.values())}" for n, p in SWAPS])
def test_a_pair_swapped_into_a_shipped_config_learns_codes_of_its_input(
    name, parts, tmp_path, monkeypatch
):
    """Two epochs of batches of 50 on mnist5k: reconstructions of 100 test digits spread around
    their mean at least a quarter as far as the digits do (0.06 to 0.11 against the digits'
    0.15; a collapsed code decodes every digit alike: 2e-7), and a VQ codebook is used as if
    by more than two entries."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    overrides = {f"model__{k}": v for k, v in parts.items()}
    run = aejax.fit(name, workdir=tmp_path, train__epochs=2, train__batch_size=50, **overrides)
    x = data.load("mnist5k", "test")[0][:100]
    assert _spread(run.reconstruct(x)) > _spread(x) / 4, run.metrics()[-1]
    if parts.get("bottleneck") == "vq":
        assert run.metrics()[-1]["train/perplexity"] > 2, run.metrics()[-1]


# --- the shipped models' shapes and sizes -----------------------------------------------------


def _init(config, batch=3):
    model = factory.build(config.model)
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:batch])
    params = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)["params"]
    return model, params, x


def _count(params) -> int:
    return sum(p.size for p in jax.tree.leaves(params))


def _shapes(config, batch=3):
    """The model, its parameters' shapes and its output's, traced without being run: all a
    size is."""
    model = factory.build(config.model)
    x = jax.ShapeDtypeStruct((batch, 28, 28, 1), jnp.float32)
    rngs = {"params": jax.random.key(1), "noise": jax.random.key(2)}
    params = jax.eval_shape(model.init, rngs, x)["params"]
    apply = functools.partial(model.apply, rngs={"noise": jax.random.key(3)})
    logits, aux = jax.eval_shape(apply, {"params": params}, x)
    return params, x, logits, aux


def test_mlp_autoencoder_shapes_and_parameter_count():
    model, params, x = _init(load_config("mlp"))
    logits, aux = model.apply({"params": params}, x)
    assert logits.shape == x.shape and aux["code"].shape == (3, 32)
    assert np.all(aux["code"] >= 0)  # ReLU code
    assert _count(params) == (784 * 32 + 32) + (32 * 784 + 784)


def test_textbook_vae_shapes_and_parameter_count():
    params, x, logits, aux = _shapes(load_config("vae"))
    assert logits.shape == x.shape
    assert aux["mu"].shape == aux["logvar"].shape == aux["z"].shape == (3, 20)
    encoder = (784 * 500 + 500) + (500 * 500 + 500) + 2 * (500 * 20 + 20)
    decoder = (20 * 500 + 500) + (500 * 500 + 500) + (500 * 784 + 784)
    assert _count(params) == encoder + decoder


def test_conv_vae_shapes_and_parameter_count():
    params, x, logits, aux = _shapes(load_config("conv_vae"))
    assert logits.shape == x.shape and aux["z"].shape == (3, 16)

    def conv(c_in, c_out):
        return 9 * c_in * c_out + c_out

    encoder = conv(1, 16) + conv(16, 32) + conv(32, 32) + 2 * (512 * 16 + 16)  # 4x4x32 = 512
    decoder = (16 * 512 + 512) + conv(32, 32) + conv(32, 32) + conv(32, 16) + conv(16, 1)
    assert _count(params) == encoder + decoder


def test_a_conv_code_takes_the_configs_code_activation():
    """ReLU by default; a linear last layer (vqvae's) gives codes of both signs, the same
    parameters otherwise."""
    config = load_config("conv")
    model, params, x = _init(config)
    relu_code = model.apply({"params": params}, x, method="encode").code
    config.model.code_activation = "linear"
    linear = factory.build(config.model)
    linear_code = linear.apply({"params": params}, x, method="encode").code
    assert np.all(relu_code >= 0) and np.any(linear_code < 0)
    np.testing.assert_array_equal(relu_code[linear_code > 0], linear_code[linear_code > 0])
    assert load_config("vqvae").model.code_activation == "linear"


def test_an_unknown_model_is_refused_naming_the_registered_ones():
    config = load_config("mlp")
    config.model.name = "transformer"
    with pytest.raises(ValueError, match="unknown model 'transformer'.*registered models"):
        factory.build(config.model)


def test_kernel_init_is_chosen_by_the_config():
    config = load_config("stacked")  # he_normal: variance 2 / fan_in
    _, params, _ = _init(config)
    kernel = params["encoder"]["mlp"]["dense0"]["kernel"]
    np.testing.assert_allclose(np.std(kernel), np.sqrt(2 / 784), rtol=0.02)
    config.model.kernel_init = "orthogonal"
    with pytest.raises(ValueError, match="unknown kernel_init 'orthogonal'.*he_normal"):
        factory.build(config.model)


# --- fitted to the data -------------------------------------------------------------------------


def test_a_classifier_takes_its_classes_from_the_labels():
    config = load_config("conv_classifier").model
    fitted = factory.fit_to_data(config, (32, 32, 3), 4)
    assert fitted.num_classes == 4 and tuple(fitted.autoencoder.image_shape) == (32, 32, 3)
    with pytest.raises(ValueError, match="a classifier needs labelled data"):
        factory.fit_to_data(config, (32, 32, 3), None)


def test_output_bias_starts_at_the_logits_of_the_pixel_means():
    """Random images, one pixel always black: any means serve, and that pixel's mean of 0 has
    no finite logit unless it is clipped."""
    config = load_config("iwae")
    _, params, _ = _init(config)
    images = jax.random.uniform(jax.random.key(5), (50, 28, 28, 1)).at[:, 0, 0].set(0.0)
    params = factory.init_from_data(config.model, {"params": params}, images)["params"]
    bias = params["decoder"]["mlp"]["dense2"]["bias"]  # 50-200-200-784: the third layer
    means = np.clip(images.mean(0).ravel(), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(jax.nn.sigmoid(bias), means, rtol=1e-4)
    assert np.isfinite(bias[0])  # an always-black pixel gets a finite bias
    config.model.name = "conv_vae"
    with pytest.raises(ValueError, match="needs an MLP decoder"):
        factory.init_from_data(config.model, {"params": {"decoder": {"conv": {}}}}, images)
