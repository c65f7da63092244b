"""Vectors as data: float (N, D) arrays checked like images, `.npy` files, the mean-square
normalisation recorded in the run, and a sparse autoencoder trained the same on 4 devices, its
dictionary split over 2 of them or not, as on 1.

`test_four_device_session` reruns this file with JAX on four CPU devices (tests/sessions.py).
"""

import functools

import chex
import jax
import ml_collections
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from sessions import assert_four_device_session_passes, four_devices, one_device

import aejax
from aejax import configs
from aejax.data import sources, stream
from aejax.data.dataset import Dataset, hold_out
from aejax.data.device import epoch_batches
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training import loop, parallel, setup
from aejax.training.state import create_state
from aejax.training.step import make_train_chunk, make_train_step


@functools.cache
def _digit_vectors():
    """Real mnist5k digits flattened to 784-d float vectors, with their labels: vectors of a
    known source, so that what a layer or a scale does to them can be checked."""
    images, labels = sources.load("mnist5k", "train")
    return images.reshape(len(images), -1)[:1000], labels[:1000]


@pytest.fixture(scope="module")
def digit_vectors():
    return _digit_vectors()


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


def test_identical_vectors_are_refused_as_having_no_variance_to_explain(digit_vectors):
    same = np.repeat(digit_vectors[0][:1], 200, axis=0)
    config = configs.override(configs.load("sae_topk"), data__activations="", model__latents=64)
    with pytest.raises(ValueError, match="every training vector is the same"):
        setup.setup(config, train=same)


# --- an .npy of vectors streamed from disk, memory-mapped ----------------------------------------


def _npy_config(path, stream_mode: str, **overrides) -> ml_collections.ConfigDict:
    """sae_topk, test-sized, on the vectors of the .npy at `path`: 9 steps an epoch of 100."""
    return configs.override(
        configs.load("sae_topk"), data__activations="", data__path=str(path),
        data__stream=stream_mode, model__latents=64, model__k=4, train__batch_size=100,
        train__epochs=3, train__chunk=4, train__save_every_steps=4, **overrides,
    )  # fmt: skip


@pytest.fixture
def npy_file(tmp_path, digit_vectors):
    """1,000 digit vectors, shifted and scaled so that normalisation has work to do."""
    path = tmp_path / "vectors.npy"
    np.save(path, digit_vectors[0] * 3 - 0.5)
    return path


@one_device
def test_a_streamed_npy_gives_the_batches_and_scale_the_in_memory_path_gives(npy_file):
    memory, streamed = (setup.setup(_npy_config(npy_file, mode)) for mode in ("never", "always"))
    assert isinstance(streamed.data.train, stream.VectorFile) and len(streamed.data.train) == 900
    for field in ("data.vector_scale", "model.data_variance"):  # one pass of blocks, in float64
        group, name = field.split(".")
        np.testing.assert_allclose(
            streamed.config[group][name], memory.config[group][name], rtol=1e-8, err_msg=field
        )
    np.testing.assert_array_equal(streamed.data.test.images, memory.data.test.images)
    for epoch in (0, 1):
        gathered = memory.batches.take(memory.batches.dataset, memory.batches.chunk(epoch, 0, 9))
        np.testing.assert_array_equal(streamed.batches.chunk(epoch, 0, 9), gathered)
    streamed.batches.close()
    np.testing.assert_allclose(  # the mean the pre-encoder bias starts at, float32 either way
        streamed.state.params["pre_bias"], memory.state.params["pre_bias"], atol=1e-6
    )


@one_device
def test_a_streamed_npy_run_stopped_inside_an_epoch_resumes_exactly(tmp_path, npy_file):
    config = _npy_config(npy_file, "always")
    whole, whole_row = loop.train_and_evaluate(config, tmp_path / "whole")
    loop.train_and_evaluate(config, tmp_path / "cut", max_steps=10)
    assert (tmp_path / "cut" / "checkpoints" / "13" / "pipeline").is_dir()  # inside epoch 2
    resumed, resumed_row = loop.train_and_evaluate(config, tmp_path / "cut")
    chex.assert_trees_all_equal(resumed.params, whole.params)
    chex.assert_trees_all_equal(resumed.collections, whole.collections)  # the usage counters
    assert resumed_row["test/fvu"] == whole_row["test/fvu"]


@one_device
def test_an_npy_streams_when_bigger_than_the_budget_and_a_bad_row_is_named(tmp_path, npy_file):
    vector_bytes = 900 * 784 * 4
    assert stream.wanted(_npy_config(npy_file, "auto", data__device_bytes_budget=vector_bytes - 1))
    assert not stream.wanted(_npy_config(npy_file, "auto", data__device_bytes_budget=vector_bytes))
    bad = np.load(npy_file)
    bad[537, 3] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match=r"bad.npy: row 537 holds a NaN or infinite value"):
        setup.setup(_npy_config(tmp_path / "bad.npy", "always"))
    np.savez(tmp_path / "vectors.npz", x_train=bad)
    with pytest.raises(ValueError, match=r"and an .npy of vectors \(data.path\); other data"):
        stream.wanted(_npy_config(tmp_path / "vectors.npz", "always"))


def test_a_sparse_autoencoder_refuses_images_naming_the_fix():
    config = configs.override(configs.load("sae_topk"), data__activations="")
    with pytest.raises(ValueError, match=r"reads vectors \(N, D\), not images .*data.activations"):
        setup.setup(config)


# --- parallel: the same first step and run on 4 devices, the dictionary split or not, as on 1 --


@one_device
@pytest.mark.slow
def test_four_device_session(tmp_path):
    assert_four_device_session_passes(__file__, tmp_path)


@functools.cache
def _first_step(name: str, devices: int, model_parallel: int = 1):
    """The compiled first step of `name`'s test-size config on `devices` devices,
    `model_parallel` of them splitting the latents, and the state and metrics it gives; the state
    made on the mesh and the batch's indices split over it as the loop does. Its usage counters
    run first with every latent dead, so AuxK's term trains too, from the 16 longest dead."""
    vectors = _digit_vectors()[0][:400]
    config = configs.override(
        configs.load(name), data__activations="", model__latents=64, model__k=4, model__aux_k=16,
        model__dead_after=1, opt__name="sgd", opt__lr=0.1, train__batch_size=40, train__chunk=1,
    )  # fmt: skip
    config = setup.fit_config(config, vectors.shape[1:], None, len(vectors))
    mesh = parallel.make_mesh(devices, model_parallel)
    loss_fn = autoencoding.make_loss_fn(factory.build(config.model), config.loss)
    state = create_state(config, vectors, mesh)
    shardings = (jax.tree.map(lambda a: a.sharding, state), parallel.replicated(mesh))
    chunk = make_train_chunk(make_train_step(loss_fn), shardings)
    state = state.replace(collections=jax.tree.map(lambda c: c + 1, state.collections))
    idx = epoch_batches(jax.random.key(0), len(vectors), 40)[:1]
    args = (
        state,
        parallel.replicate(vectors, mesh),
        parallel.shard_batch(idx, mesh, batch_axis=1),
        jax.random.key(1),
    )
    compiled = chunk.lower(*args).compile()
    return compiled, compiled(*args)


@four_devices
@pytest.mark.parametrize("model_parallel", [1, 2], ids=["data4", "data2xmodel2"])
@pytest.mark.parametrize("name", ["sae_topk", "sae_batchtopk", "sae_jumprelu", "sae_gated"])
def test_sae_step_on_four_devices_equals_step_on_one(name, model_parallel):
    one, one_metrics = jax.device_get(_first_step(name, 1)[1])
    four, four_metrics = jax.device_get(_first_step(name, 4, model_parallel)[1])
    if name in ("sae_topk", "sae_batchtopk"):
        assert one_metrics["auxk"][0] > 0
    assert four_metrics.keys() == one_metrics.keys()
    for key, value in one_metrics.items():
        np.testing.assert_allclose(four_metrics[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(four.params), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # Which latents fired is counted over the whole batch, not a device's part of it.
    np.testing.assert_array_equal(four.collections["sae_usage"]["since_fired"],
                                  one.collections["sae_usage"]["since_fired"])  # fmt: skip


@four_devices
@pytest.mark.parametrize("name", ["sae_topk", "sae_jumprelu", "sae_gated"])
def test_a_2x2_step_keeps_each_device_to_half_the_latents(name):
    compiled, (state, metrics) = _first_step(name, 4, 2)
    for param_name, spec, share in [
        ("encoder_kernel", P(None, "model"), (784, 32)),
        ("decoder_kernel", P("model", None), (32, 784)),
        ("encoder_bias", P("model"), (32,)),
    ]:
        param = state.params[param_name]
        assert param.sharding.spec == spec, param_name
        assert [s.data.shape for s in param.addressable_shards] == [share] * 4, param_name
    assert state.params["pre_bias"].sharding.is_fully_replicated
    assert state.collections["sae_usage"]["since_fired"].sharding.spec == P("model")
    assert all(m.sharding.is_fully_replicated for m in jax.tree.leaves(metrics))
    hlo = compiled.as_text()
    assert "f32[784,64]" not in hlo and "f32[64,784]" not in hlo  # no device holds a whole kernel
    if name != "sae_topk":  # only lax.top_k gathers the [B, L] pre-activations (docs/parallel.md)
        assert "all-gather" not in hlo


def _short_sae(**overrides) -> ml_collections.ConfigDict:
    """sae_topk at test size, trained with Adam for 2 epochs of 9 steps on 360 digit vectors."""
    test_size = dict(
        data__activations="", model__latents=64, model__k=4, model__dead_after=200,
        train__batch_size=40, train__epochs=2, train__chunk=5,
    )  # fmt: skip
    return configs.override(configs.load("sae_topk"), **{**test_size, **overrides})


@four_devices
def test_a_sharded_run_ends_as_on_one_device_and_its_checkpoints_move_between_layouts(tmp_path):
    vectors = _digit_vectors()[0][:400]
    sharded, _ = loop.train_and_evaluate(
        _short_sae(train__model_parallel=2), tmp_path / "2x2", mesh=parallel.make_mesh(4),
        train=vectors,
    )  # fmt: skip
    mu = sharded.opt_state[0].mu["encoder_kernel"]  # Adam's moments are split as their parameter
    assert mu.sharding.spec == P(None, "model") and len(mu.sharding.device_set) == 4
    assert (tmp_path / "2x2" / "feature_density.png").stat().st_size > 1000  # figures drawn
    alone, _ = loop.train_and_evaluate(
        _short_sae(), tmp_path / "one", mesh=parallel.make_mesh(1), train=vectors
    )
    for a, b in zip(jax.tree.leaves(jax.device_get(alone.params)),
                    jax.tree.leaves(jax.device_get(sharded.params)), strict=True):  # fmt: skip
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
    # The layout is no part of what a run computes: each checkpoint resumes in the other one.
    contents = lambda state: jax.device_get((state.params, state.opt_state, state.collections))
    for workdir, model_parallel, devices in [("2x2", 1, 1), ("one", 2, 4)]:
        saved = alone if workdir == "one" else sharded
        restored, _ = loop.train_and_evaluate(
            _short_sae(train__model_parallel=model_parallel), tmp_path / workdir,
            mesh=parallel.make_mesh(devices), train=vectors,
        )  # fmt: skip
        kernel = restored.params["encoder_kernel"]
        assert len(kernel.sharding.device_set) == devices
        assert kernel.sharding.spec == (P(None, "model") if model_parallel == 2 else P())
        chex.assert_trees_all_equal(contents(restored), contents(saved))
    chex.assert_trees_all_equal(aejax.load_run(tmp_path / "2x2").params, contents(sharded)[0])


@four_devices
def test_a_dictionary_or_a_batch_that_does_not_split_over_a_2x2_mesh_is_refused():
    vectors, mesh = _digit_vectors()[0][:400], parallel.make_mesh(4)
    odd = _short_sae(model__latents=63, train__model_parallel=2)
    with pytest.raises(ValueError, match=r"decoder_kernel has 63 latents, which do not divide "):
        setup.setup(odd, mesh=mesh, train=vectors)
    with pytest.raises(
        ValueError, match=r"batch_size=31 does not divide over the 2 parts of the mesh \(4 devices "
        r"/ train.model_parallel=2\); use a multiple of 2 \(30 or 32\)"
    ):  # fmt: skip
        setup.setup(
            _short_sae(train__batch_size=31, train__model_parallel=2), mesh=mesh, train=vectors
        )


@one_device
def test_a_model_axis_that_does_not_divide_the_devices_is_refused():
    config = configs.override(
        configs.load("sae_topk"), data__activations="", train__model_parallel=3
    )
    refusal = (
        r"train.model_parallel=3 does not divide the 1 device of the mesh: choose one of 1, or "
        r"run on a multiple of 3 devices \(--devices\)"
    )
    with pytest.raises(ValueError, match=refusal):
        setup.setup(config, train=_digit_vectors()[0])
