"""The Dataset abstraction: checks, uint8 storage scaled in the step, providers, any image shape."""

import json
import struct
import warnings
import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from conftest import load_config

from aejax import models
from aejax.data import sources
from aejax.data.dataset import Dataset, as_float, hold_out
from aejax.data.device import epoch_batches
from aejax.evaluation import generation, representation
from aejax.objectives import autoencoding, make_objective
from aejax.training import checkpoint, loop
from aejax.training.state import create_state
from aejax.training.step import CompileClock, make_evaluate, make_train_chunk, make_train_step


@pytest.fixture(scope="module")
def digits():
    """Real mnist5k digits and labels, stored uint8."""
    split = sources.dataset("mnist5k", "train")
    return split.images, split.labels


def shaped(images_Nx28x28x1: np.ndarray, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Real digits in another shape: padded 28 -> 32 (2 black pixels a side), doubled to 64 by
    pixel repetition, and for 3 channels tinted by a random colour per image. No public colour
    dataset is on this machine; these keep real image statistics in the shapes of CIFAR-10
    (32x32x3) and 64x64 CelebA."""
    x = images_Nx28x28x1
    side, _, channels = shape
    if side >= 32:
        x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    if side == 64:
        x = x.repeat(2, axis=1).repeat(2, axis=2)
    if channels == 3:
        tint = np.random.default_rng(seed).uniform(0.3, 1.0, (len(x), 1, 1, 3))
        x = np.round(x * tint).astype(np.uint8)
    assert x.shape[1:] == shape
    return x


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
        (np.zeros((2, 16), np.uint8), None, r"rank 4, \(N, height, width, channels\)"),
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
    loss_fn = make_objective(models.build(config.model), config.loss)
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
    config.model = models.fit_to_data(config.model, test.image_shape, None)
    state = create_state(config, test.images)
    loss_fn = autoencoding.make_loss_fn(models.build(config.model), config.loss)
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


def test_a_classifier_takes_its_classes_from_the_labels():
    config = load_config("conv_classifier").model
    fitted = models.fit_to_data(config, (32, 32, 3), 4)
    assert fitted.num_classes == 4 and tuple(fitted.autoencoder.image_shape) == (32, 32, 3)
    with pytest.raises(ValueError, match="a classifier needs labelled data"):
        models.fit_to_data(config, (32, 32, 3), None)


def test_probes_count_the_classes_in_the_labels():
    """Invented codes: class c is unit c plus small noise, 12 classes, perfectly separable.
    A probe of 10 classes could never predict 10 or 11."""
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(12), 20)
    codes = jnp.asarray(np.eye(12)[labels] + 0.01 * rng.normal(size=(240, 12)), jnp.float32)
    assert representation.knn_accuracy(codes, labels, codes, labels, k=3) == 1.0
    assert representation.linear_probe(codes, labels, codes, labels) == 1.0


# --- providers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape, num_classes", [("cifar10", (32, 32, 3), 10), ("celeb_a", (64, 64, 3), None)]
)
def test_tfds_image_datasets_under_mock_data(name, shape, num_classes):
    """TFDS's cifar10 and celeb_a (218x178, cropped and resized to 64) through as_data_source,
    without TensorFlow; `USE_CODE` because TFDS ships no metadata files for them."""
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        split = sources.dataset(name, "test")
    assert split.images.shape == (6, *shape) and split.images.dtype == np.uint8
    assert split.images.std() > 0
    assert split.num_classes == num_classes
    assert (split.labels is None) == (num_classes is None)


def test_npz_with_both_splits(tmp_path, digits):
    images, labels = digits
    path = tmp_path / "mine.npz"
    np.savez(
        path, x_train=images[:60], y_train=labels[:60], x_test=images[60:80], y_test=labels[60:80]
    )
    config = load_config("conv")
    config.data.path = str(path)
    train_split, test_split = (sources.from_config(config.data, s) for s in sources.SPLITS)
    np.testing.assert_array_equal(train_split.images, images[:60])
    np.testing.assert_array_equal(test_split.labels, labels[60:80])


def test_npz_without_test_split_holds_out_a_fraction(tmp_path, digits):
    path = tmp_path / "floats.npz"
    np.savez(path, x_train=digits[0][:100] / np.float32(255))  # float images, no labels
    config = load_config("conv")
    config.data.path, config.data.test_fraction = str(path), 0.2
    train_split, test_split = (sources.from_config(config.data, s) for s in sources.SPLITS)
    assert len(train_split) == 80 and len(test_split) == 20 and train_split.labels is None
    assert train_split.images.dtype == np.float32  # floats are kept, not quantised
    together = np.concatenate([train_split.images, test_split.images]).reshape(100, -1)
    assert len({row.tobytes() for row in together}) == 100  # disjoint, nothing lost
    np.savez(path, images=digits[0][:10])
    with pytest.raises(ValueError, match=r"holds \['images'\]; expected 'x_train'"):
        sources.from_config(config.data, "train")


def test_training_from_an_npz_path(tmp_path, monkeypatch, digits):
    monkeypatch.setattr("aejax.evaluation.figures.write_figures", lambda *args, **kwargs: None)
    path = tmp_path / "colour.npz"
    np.savez(path, x_train=shaped(digits[0][:250], (32, 32, 3)))
    config = load_config("mlp")
    config.data.path = str(path)
    config.model.encoder_widths, config.train.epochs, config.train.batch_size = (8, 2), 1, 50
    state, row = loop.train_and_evaluate(config, tmp_path / "run")
    assert state.params["decoder"]["mlp"]["dense1"]["kernel"].shape == (8, 32 * 32 * 3)
    assert np.isfinite(row["test/loss"])


def write_pngs(folder, images, labels=None):
    for i, image in enumerate(images):
        sub = folder if labels is None else folder / f"class_{labels[i]}"
        sub.mkdir(parents=True, exist_ok=True)
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        PIL.Image.fromarray(pixels).save(sub / f"{i:04d}.png")


def test_folder_with_splits_and_class_subfolders(tmp_path, digits):
    images, labels = digits[0][:40], digits[1][:40]
    write_pngs(tmp_path / "train", images[:30], labels[:30])
    write_pngs(tmp_path / "test", images[30:], labels[30:])
    split = sources.dataset("", "train", path=tmp_path)
    order = np.argsort(labels[:30], kind="stable")  # files come class by class
    np.testing.assert_array_equal(split.images, images[:30][order])
    classes = np.unique(labels[:30])
    np.testing.assert_array_equal(split.labels, np.searchsorted(classes, labels[:30][order]))
    assert split.num_classes == len(classes)


def test_flat_folder_of_colour_images_of_mixed_sizes(tmp_path, digits):
    colour = shaped(digits[0][:20], (32, 32, 3))
    write_pngs(tmp_path, colour[:19])
    PIL.Image.fromarray(colour[19]).resize((40, 48)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="big.png is 40x48 but .* set data.image_size"):
        sources.dataset("", "train", path=tmp_path)
    split = sources.dataset("", "train", path=tmp_path, image_size=16, test_fraction=0.25)
    assert split.images.shape == (15, 16, 16, 3) and split.labels is None


def write_png_bomb(path, side: int):
    """A black 1-bit PNG of side x side pixels: a few kilobytes, side**2 bytes once decoded."""
    deflate = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # each row: its filter byte, then 8 pixels a byte
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grey, no interlace
    png = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png)


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path, digits):
    write_pngs(tmp_path, digits[0][:3])
    bomb = tmp_path / "bomb.png"
    write_png_bomb(bomb, 9000)  # 81 million pixels, under Pillow's own bounds
    assert bomb.stat().st_size < 100_000
    with warnings.catch_warnings(), PIL.Image.open(bomb) as image:
        warnings.simplefilter("error")  # Pillow would decode it without a word
        assert image.size == (9000, 9000)
    refusal = (
        r"bomb.png is 9000x9000, 81,000,000 pixels, more than data.max_pixels=64,000,000; .*"
        r"Remove or replace the file, or set data.skip_bad_images=True"
    )
    with pytest.raises(ValueError, match=refusal):
        sources.dataset("", "train", path=tmp_path)
    with pytest.raises(ValueError, match=r"0000.png is 28x28, 784 pixels, more than .*=783"):
        sources.dataset("", "train", path=tmp_path, max_pixels=783)


def test_bad_image_files_are_named_or_left_out_and_counted(tmp_path, digits):
    images, labels = digits[0][:6], np.array([0, 0, 0, 1, 1, 1])
    write_pngs(tmp_path / "train", images, labels)  # class_0/0000.png ... class_1/0005.png
    write_pngs(tmp_path / "test", images[:2], labels[:2])
    (tmp_path / "train" / "class_0" / "0001a.png").write_text("not an image")
    write_png_bomb(tmp_path / "train" / "class_1" / "0003a.png", 20_000)  # Pillow refuses it too
    with pytest.raises(ValueError, match=r"0001a.png is not a readable image \(cannot identify"):
        sources.dataset("", "train", path=tmp_path)
    with pytest.warns(UserWarning, match=r"left out 2 of 8 image files, .*0001a.png first"):
        split = sources.dataset("", "train", path=tmp_path, skip_bad_images=True)
    np.testing.assert_array_equal(split.images, images)
    np.testing.assert_array_equal(split.labels, labels)  # each file keeps its own label
    (tmp_path / "icons").mkdir()  # a .png holding an icon: ICO is not a decoder aejax uses
    PIL.Image.fromarray(images[0, ..., 0]).save(tmp_path / "icons" / "0.png", format="ICO")
    with pytest.raises(ValueError, match="all 1 image files were left out"):
        sources.dataset("", "train", path=tmp_path / "icons", skip_bad_images=True, test_fraction=0.5)


def test_hold_out_needs_room_for_both_splits(digits):
    with pytest.raises(ValueError, match="leaves 0 test images"):
        hold_out(Dataset(digits[0][:3]), 0.1)
