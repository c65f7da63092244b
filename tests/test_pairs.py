"""Any encoder with any bottleneck and decoder: every pair trains a step on real images of three
shapes, the part sizes a config leaves unset are derived, the only pairs refused are those a
tied decoder cannot make, and pairs swapped into shipped configs learn codes that depend on
their input."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import aejax
from aejax import configs, models
from aejax.configs import fields
from aejax.evaluation import figures
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training.optimizers import make_optimizer
from aejax.training.state import TrainState
from aejax.training.step import make_train_step

SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]
PAIRS = list(itertools.product(models.ENCODERS, models.BOTTLENECKS, models.DECODERS))


def impossible(encoder: str, bottleneck: str, decoder: str) -> bool:
    """A tied decoder runs an mlp encoder's kernels backwards from a code of their width."""
    return decoder == "tied" and (encoder != "mlp" or bottleneck == "gaussian")


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
    x = jnp.asarray(aejax.data.load("mnist5k", "test")[0][:8])  # in [0, 1]
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

    tx = make_optimizer(config.opt, models.assigned_groups(config.model))
    params = jax.tree.map(draw, variables["params"])
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx)


@pytest.mark.parametrize("image_shape", SHAPES, ids=["28x28x1", "32x32x3", "64x64x3"])
def test_every_possible_pair_trains_a_step_on_real_images(image_shape, digits):
    """Logits of the image's shape, and one step of every pair, compiled together, giving a
    finite loss and finite parameters that moved."""
    x = digits[image_shape]
    pairs = [pair for pair in PAIRS if not impossible(*pair)]
    states, steps = [], []
    for pair in pairs:
        config = tiny(*pair, image_shape)
        model = models.build(config.model)
        rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
        (logits, _), variables = jax.eval_shape(model.init_with_output, rngs, x)
        assert logits.shape == x.shape, pair
        assert set(variables) == {"params"}, pair
        states.append(_state(config, model, variables))
        steps.append(make_train_step(autoencoding.make_loss_fn(model, config.loss)))
    rng = jax.random.key(2)
    every_step = jax.jit(lambda states: [step(s, x, rng) for step, s in zip(steps, states)])
    for pair, state, (new, metrics) in zip(pairs, states, every_step(states), strict=True):
        assert np.isfinite(metrics["loss"]), (pair, metrics)
        chex.assert_tree_all_finite(new.params)
        moved = jax.tree.map(lambda a, b: bool(np.any(a != b)), state.params, new.params)
        assert any(jax.tree.leaves(moved)), pair


def test_only_the_pairs_a_tied_decoder_cannot_make_are_refused_saying_why():
    refused = {}
    for pair in PAIRS:
        try:
            models.build(tiny(*pair).model)
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
    return models.fit_to_data(config.model, (28, 28, 1), None)


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
        if model.name in models.PRESETS:
            assert models.fit_to_data(model, model.image_shape, None) == model, name


def test_a_vq_code_dim_that_does_not_divide_the_code_names_what_to_set():
    with pytest.raises(ValueError) as error:
        models.build(_swapped("stacked", bottleneck="vq"))  # a 150-unit code
    assert str(error.value) == (
        "a vq bottleneck cuts the code into vectors of model.code_dim=4, which does not divide "
        "its last axis, model.encoder_widths[-1]=150: set model.code_dim=3 (or another divisor "
        "of 150), or model.encoder_widths to end in a multiple of 4"
    )
    models.build(_swapped("stacked", bottleneck="vq", code_dim=3))


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
    # Single steps: XLA:CPU runs convolutions inside the mlp configs' lax.scan far slower.
    run = aejax.fit(
        name, workdir=tmp_path, train__epochs=2, train__chunk=1, train__batch_size=50, **overrides
    )
    x = aejax.data.load("mnist5k", "test")[0][:100]
    assert _spread(run.reconstruct(x)) > _spread(x) / 4, run.metrics()[-1]
    if parts.get("bottleneck") == "vq":
        assert run.metrics()[-1]["train/perplexity"] > 2, run.metrics()[-1]
