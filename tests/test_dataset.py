"""The Dataset: images and labels checked (one message per fault, channels-first named),
stored uint8 and scaled in the step, of any image shape, and a test split held out."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest
from conftest import load_config, shaped

import aejax
from aejax.data import sources
from aejax.data.dataset import Dataset, as_float, hold_out
from aejax.data.device import epoch_batches
from aejax.evaluation import generation, representation
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.objectives.registry import make_objective
from aejax.training import checkpoint, loop
from aejax.training.state import create_state
from aejax.training.step import CompileClock, make_evaluate, make_train_chunk, make_train_step


@pytest.fixture(scope="module")
def digits():
    """Real mnist5k digits and labels, stored uint8."""
    split = sources.dataset("mnist5k", "train")
    return split.images, split.labels


# --- checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.full((2, 4, 4, 1), np.nan, np.float32), None, "2 NaN values"),
        (np.full((2, 4, 4, 1), 1.5, np.float32), None, r"must lie in \[0, 1\], found 1.5"),
        (np.full((2, 4, 4, 1), -0.5), None, r"must lie in \[0, 1\]"),
        (np.full((2, 4, 4, 1), 256, np.int64), None, "must lie in 0..255, found 256..256"),
        (np.full((2, 4, 4, 1), -1, np.int32), None, "must lie in 0..255"),
        (np.zeros((2, 4, 4), np.uint8), None, r"rank 4.*add a channel axis"),
        (np.zeros((2, 16), np.uint8), None, r"Flattened images\? Give them as \(N, height, width"),
        (np.zeros((2, 4, 4, 1, 1), np.uint8), None, r"rank 4, \(N, height, width, channels\)"),
        (np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1, 2]), r"one per image, shape \(2,\)"),
        (np.zeros((2, 4, 4, 1), np.uint8), np.array([0, -1]), "class indices 0, 1, ...; found -1"),
        (np.zeros((2, 4, 4, 1), np.uint8), np.array([0.0, 1.0]), "must be integers"),
        (np.array(["a"] * 16).reshape(1, 4, 4, 1), None, "dtype <U1"),
    ],
)
def test_bad_data_is_refused_naming_the_fault(images, labels, message):
    """Invented arrays: each holds exactly one fault."""
    with pytest.raises(ValueError, match=message):
        Dataset(images, labels, name="mine")


def test_bad_data_is_refused_by_train_and_evaluate(tmp_path, digits):
    images = digits[0][:100].astype(np.float32)  # 0..255 as floats: forgot to divide by 255
    with pytest.raises(ValueError, match="train: float images must lie in .*divide by 255"):
        loop.train_and_evaluate(load_config("conv"), tmp_path, train=images)
    assert not (tmp_path / "config.json").exists()


def test_channels_first_images_are_refused_naming_the_transpose(digits, tmp_path):
    x = digits[0][:400].astype(np.float32) / 255
    with pytest.raises(ValueError, match=r"\(400, 1, 28, 28\) look channels-first .*transpose\(0, 2, 3, 1\)"):
        aejax.fit("mlp", train=x.transpose(0, 3, 1, 2), workdir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_labels_fix_the_number_of_classes(digits):
    images, labels = digits
    assert Dataset(images[:50], labels[:50]).num_classes == int(labels[:50].max()) + 1
    assert Dataset(images[:50], labels[:50], num_classes=12).num_classes == 12
    with pytest.raises(ValueError, match="needs num_classes of at least"):
        Dataset(images[:50], labels[:50], num_classes=3)


# --- uint8 storage --------------------------------------------------------------------------


def test_uint8_images_scale_on_the_device_exactly_as_on_the_host(digits):
    split = Dataset(*digits)
    assert split.images.dtype == np.uint8 and split.labels.dtype == np.int32
    on_device = np.asarray(jax.jit(as_float)(jnp.asarray(split.images)))
    assert on_device.dtype == np.float32
    np.testing.assert_array_equal(on_device, split.float_images())
    np.testing.assert_array_equal(split.float_images(), sources.load("mnist5k", "train")[0])


def test_a_uint8_dataset_trains_as_its_float32_twin(digits):
    """Scaling inside the step changes nothing but the memory: the same parameters come out, to
    float rounding (XLA may fold the 1/255 scale into the first layer's matmul)."""
    config = load_config("mlp")
    config.model.encoder_widths = (16, 4)
    loss_fn = make_objective(factory.build(config.model), config.loss)
    chunk = make_train_chunk(make_train_step(loss_fn))
    split = Dataset(digits[0][:200])
    idx = epoch_batches(jax.random.key(1), 200, 50)
    states = [
        chunk(create_state(config, images), jnp.asarray(images), idx, jax.random.key(2))[0]
        for images in (split.images, split.float_images())
    ]
    chex.assert_trees_all_close(states[0].params, states[1].params, rtol=1e-4, atol=1e-6)
    moved = jax.tree.map(
        lambda a, b: float(jnp.abs(a - b).max()),
        states[0].params,
        create_state(config, split.images).params,
    )
    assert max(jax.tree.leaves(moved)) > 1e-3  # four steps moved the parameters far beyond that


def test_training_stores_uint8_images_on_the_device(tmp_path, monkeypatch, digits):
    lowered = []  # the arguments each function was compiled for; the chunks' are 4
    compile_ahead = CompileClock.compile

    def spying_compile(self, jitted, *args):
        lowered.append(args)
        return compile_ahead(self, jitted, *args)

    monkeypatch.setattr(CompileClock, "compile", spying_compile)
    monkeypatch.setattr("aejax.evaluation.figures.write_figures", lambda *args, **kwargs: None)
    config = load_config("mlp")
    config.model.encoder_widths, config.train.epochs, config.train.batch_size = (8, 2), 1, 50
    loop.train_and_evaluate(config, tmp_path, train=Dataset(*digits).take(np.arange(200)))
    stored = [dataset for _, dataset, *_ in (args for args in lowered if len(args) == 4)]
    assert stored and all(isinstance(d, jax.Array) and d.dtype == jnp.uint8 for d in stored)


# --- any image shape ------------------------------------------------------------------------


def initial_test_loss(config, test: Dataset) -> float:
    config = config.copy_and_resolve_references()
    config.model = factory.fit_to_data(config.model, test.image_shape, None)
    state = create_state(config, test.images)
    loss_fn = autoencoding.make_loss_fn(factory.build(config.model), config.loss)
    return make_evaluate(loss_fn, 1000)(state.params, test.images, jax.random.key(0))["loss"]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3), (64, 64, 3)])
@pytest.mark.parametrize("name", ["conv", "conv_vae"])
@pytest.mark.slow
def test_conv_models_train_on_arrays_of_any_shape(tmp_path, digits, name, shape):
    """Numpy arrays of real digits reshaped (see `shaped`) train a conv AE and VAE from one
    config each: the model takes its shape from the data, the test loss falls, and the colour
    shows in the VAE's sample grid."""
    images = shaped(digits[0][:320], shape)
    train_split, test_split = Dataset(images[:256]), Dataset(images[256:])
    config = load_config(name)
    config.model.encoder_features, config.model.decoder_features = (8, 8, 8), (8, 8, 8)
    if name == "conv_vae":
        config.model.latent_dim = 8
    config.opt.lr, config.train.batch_size, config.train.epochs = 3e-3, 32, 3
    start = initial_test_loss(config, test_split)
    _, row = loop.train_and_evaluate(config, tmp_path, train=train_split, test=test_split)
    assert row["test/loss"] < 0.8 * start, (start, row)
    recorded = json.loads((tmp_path / checkpoint.CONFIG_FILE).read_text())
    assert tuple(recorded["model"]["image_shape"]) == shape  # what the run trained on
    if name == "conv_vae":
        with PIL.Image.open(tmp_path / "samples.png") as samples:  # titled, at generation.ZOOM
            zoom = generation.ZOOM
            assert samples.size == (10 * shape[1] * zoom, 30 + 6 * shape[0] * zoom)
            grid = np.asarray(samples.convert("RGB"))[30:].astype(int)
        coloured = np.abs(grid - grid.mean(axis=-1, keepdims=True)).max() > 8
        assert coloured == (shape[2] == 3)


def test_probes_count_the_classes_in_the_labels():
    """Invented codes: class c is unit c plus small noise, 12 classes, perfectly separable.
    A probe of 10 classes could never predict 10 or 11."""
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(12), 20)
    codes = jnp.asarray(np.eye(12)[labels] + 0.01 * rng.normal(size=(240, 12)), jnp.float32)
    assert representation.knn_accuracy(codes, labels, codes, labels, k=3) == 1.0
    assert representation.linear_probe(codes, labels, codes, labels) == 1.0


# --- held out -----------------------------------------------------------------------------


def test_hold_out_needs_room_for_both_splits(digits):
    with pytest.raises(ValueError, match="leaves 0 test images"):
        hold_out(Dataset(digits[0][:3]), 0.1)
