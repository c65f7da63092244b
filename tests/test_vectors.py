"""Vectors as data: float (N, D) arrays checked like images, `.npy` files, the mean-square
normalisation recorded in the run, and a sparse autoencoder's first step the same on 4 devices
as on 1.

`test_four_device_session` reruns this file with JAX on four CPU devices (tests/sessions.py).
"""


import jax
import numpy as np
import pytest
from sessions import assert_four_device_session_passes, four_devices, one_device

from aejax import configs
from aejax.data import sources
from aejax.data.dataset import Dataset, hold_out
from aejax.data.device import epoch_batches
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training import parallel, setup
from aejax.training.state import create_state
from aejax.training.step import make_train_chunk, make_train_step


@pytest.fixture(scope="module")
def digit_vectors():
    """Real mnist5k digits flattened to 784-d float vectors, with their labels: vectors of a
    known source, so that what a layer or a scale does to them can be checked."""
    images, labels = sources.load("mnist5k", "train")
    return images.reshape(len(images), -1)[:1000], labels[:1000]


def test_float_vectors_are_kept_as_float32(digit_vectors):
    vectors, labels = digit_vectors
    data = Dataset(vectors.astype(np.float64) * 3 - 1, labels)  # any finite values
    assert data.vectors and data.images.dtype == np.float32 and data.image_shape == (784,)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda v: (v * 255).astype(np.uint8), r"Flattened images\? .*reshape\(-1, 28, 28, 1\)"),
        (lambda v: np.where(np.arange(784) == 5, np.nan, v), "1000 NaN or infinite values, first in row 0"),
        (lambda v: v[:, :0], "hold no values"),
    ],
)  # fmt: skip
def test_bad_vectors_are_refused_naming_the_fault(digit_vectors, make, message):
    with pytest.raises(ValueError, match=message):
        Dataset(make(digit_vectors[0]))


def test_an_npy_of_vectors_is_read_with_a_held_out_test_split(tmp_path, digit_vectors):
    path = tmp_path / "acts.npy"
    np.save(path, digit_vectors[0])
    config = configs.load("sae_topk")
    config.data.path, config.data.activations = str(path), ""
    train, test = (sources.from_config(config.data, split) for split in sources.SPLITS)
    assert len(train) == 900 and len(test) == 100 and train.vectors and test.labels is None
    together = np.concatenate([train.images, test.images])
    np.testing.assert_array_equal(np.sort(together, axis=0), np.sort(digit_vectors[0], axis=0))


def test_vectors_are_scaled_to_mean_squared_norm_d_and_the_scale_is_recorded(digit_vectors):
    vectors = digit_vectors[0]
    config = configs.override(
        configs.load("sae_topk"), data__activations="", model__latents=64, train__batch_size=100
    )
    run = setup.setup(config, train=vectors)
    scale = run.config.data.vector_scale
    train = run.data.train.images
    np.testing.assert_allclose(np.mean(np.sum(np.square(train), axis=1)), 784, rtol=1e-4)
    held_train, held_test = hold_out(Dataset(vectors), config.data.test_fraction)
    np.testing.assert_array_equal(train, held_train.images * np.float32(scale))
    np.testing.assert_array_equal(run.data.test.images, held_test.images * np.float32(scale))
    unscaled = setup.setup(configs.override(config, data__normalize="none"), train=vectors)
    assert unscaled.config.data.vector_scale is None


def test_a_sparse_autoencoder_refuses_images_naming_the_fix():
    config = configs.override(configs.load("sae_topk"), data__activations="")
    with pytest.raises(ValueError, match=r"reads vectors \(N, D\), not images .*data.activations"):
        setup.setup(config)


# --- data-parallel: the same first step on 4 devices as on 1 ------------------------------------


@one_device
@pytest.mark.slow
def test_four_device_session(tmp_path):
    assert_four_device_session_passes(__file__, tmp_path)


def _first_step(name: str, devices: int, vectors: np.ndarray):
    """The state after the first step of `name`'s test-size config on `devices` devices, the
    batch's indices split over them as the loop splits them; its usage counters run first
    with every latent dead, so AuxK's term trains too."""
    config = configs.override(
        configs.load(name), data__activations="", model__latents=64, model__k=4,
        model__dead_after=1, opt__name="sgd", opt__lr=0.1, train__batch_size=40, train__chunk=1,
    )  # fmt: skip
    config = setup.fit_config(config, vectors.shape[1:], None, len(vectors))
    mesh = parallel.make_mesh(devices)
    model = factory.build(config.model)
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    chunk = make_train_chunk(make_train_step(loss_fn), parallel.replicated(mesh))
    state = create_state(config, vectors)
    state = state.replace(collections=jax.tree.map(lambda c: c + 1, state.collections))
    idx = epoch_batches(jax.random.key(0), len(vectors), 40)[:1]
    args = (
        parallel.replicate(state, mesh),
        parallel.replicate(vectors, mesh),
        parallel.shard_batch(idx, mesh, batch_axis=1),
        jax.random.key(1),
    )
    return jax.device_get(chunk(*args))


@four_devices
@pytest.mark.parametrize("name", ["sae_topk", "sae_batchtopk", "sae_jumprelu", "sae_gated"])
def test_sae_step_on_four_devices_equals_step_on_one(name, digit_vectors):
    vectors = digit_vectors[0][:400]
    one, one_metrics = _first_step(name, 1, vectors)
    four, four_metrics = _first_step(name, 4, vectors)
    np.testing.assert_allclose(four_metrics["loss"], one_metrics["loss"], rtol=1e-5)
    if name in ("sae_topk", "sae_batchtopk"):
        assert one_metrics["auxk"][0] > 0
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(four.params), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # Which latents fired is counted over the whole batch, not a device's quarter of it.
    np.testing.assert_array_equal(four.collections["sae_usage"]["since_fired"],
                                  one.collections["sae_usage"]["since_fired"])  # fmt: skip
