"""Data parallelism: a batch split over 4 devices takes the 1-device step, runs stay reproducible,
checkpoints move between device counts, and two processes train as one.

`test_four_device_session` reruns this file with JAX on four CPU devices (tests/sessions.py):
the 4-device tests run there and are skipped here, the others the other way round.
`python tests/test_parallel.py PORT PROCESS_ID WORKDIR OUT` is one process of the 2-process run.
"""

import functools
import sys

import chex
import jax
import ml_collections
import numpy as np
import pytest
from conftest import assert_trained_alike, tiny_config
from sessions import (
    assert_four_device_session_passes,
    four_devices,
    one_device,
    run_python,
    run_two_processes,
)

from aejax.data import sources
from aejax.data.device import epoch_batches
from aejax.models import factory
from aejax.objectives import autoencoding, corruptions
from aejax.training import checkpoint, loop, parallel
from aejax.training.state import create_state
from aejax.training.step import make_train_chunk, make_train_step


def _leaves(tree) -> list[np.ndarray]:
    return jax.tree.leaves(jax.device_get(tree))


# vqvae_ema: vectors of 4 (its 16 would not divide 8 channels), entries unused for a step restarted
FOR_ONE_STEP = {"vqvae_ema": {"model__code_dim": 4, "model__dead_code_steps": 1}}


def _one_sgd_step(name: str) -> ml_collections.ConfigDict:
    """`name` at test size for one step of plain SGD on a batch of 40: the update is the gradient
    itself, where Adam's first steps (nearly its sign) would hide a difference."""
    return tiny_config(
        name, max_width=8, opt__name="sgd", opt__lr=1.0, train__batch_size=40, train__chunk=1,
        **FOR_ONE_STEP.get(name, {}),
    )  # fmt: skip


@one_device
@pytest.mark.slow
def test_four_device_session(tmp_path):
    assert_four_device_session_passes(__file__, tmp_path)


@functools.cache
def _first_step(name: str, devices: int) -> tuple:
    """The compiled first-step chunk of `_one_sgd_step(name)` on `devices` devices, its arguments
    placed as the loop places them (the batch's indices split over the devices), and its result."""
    config, mesh = _one_sgd_step(name), parallel.make_mesh(devices)
    train_x, _ = sources.load(config.data.name, "train")
    loss_fn = autoencoding.make_loss_fn(factory.build(config.model), config.loss)
    train_chunk = make_train_chunk(make_train_step(loss_fn), parallel.replicated(mesh))
    idx = epoch_batches(jax.random.key(0), train_x.shape[0], config.train.batch_size)[:1]
    args = (
        parallel.replicate(create_state(config, train_x), mesh),
        parallel.replicate(train_x, mesh),
        parallel.shard_batch(idx, mesh, batch_axis=1),
        jax.random.key(1),
    )
    compiled = train_chunk.lower(*args).compile()
    return compiled, compiled(*args)


@four_devices
@pytest.mark.parametrize("name", ["mlp", "conv_denoising", "vae", "vqvae_ema"])
def test_step_on_four_devices_equals_step_on_one(name):
    """Parameters and mutable collections alike: an EMA codebook's counts and sums are those of
    the whole batch, not of one device's quarter (and so are its restarts)."""
    _, (one, one_metrics) = _first_step(name, 1)
    _, (four, four_metrics) = _first_step(name, 4)
    kernel = jax.tree.leaves(four.params)[-1]
    assert len(kernel.sharding.device_set) == 4 and kernel.sharding.is_fully_replicated
    # A quarter batch per device sums its pixels in another order than the whole batch: float32
    # rounding alone moved the loss by 1.8e-6 on an AVX-512 processor (Zen 5).
    np.testing.assert_allclose(four_metrics["loss"], one_metrics["loss"], rtol=1e-5)
    for a, b in zip(_leaves((one.params, one.collections)),
                    _leaves((four.params, four.collections)), strict=True):  # fmt: skip
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    if name == "vqvae_ema":  # entries restarted: the check above covers them
        assert np.any(one.collections["vq_ema"]["counts"] == 1.0)


@four_devices
def test_compiled_step_gathers_a_quarter_batch_per_device_and_all_reduces():
    compiled, _ = _first_step("mlp", 4)
    hlo = compiled.as_text()
    assert "f32[10,28,28,1]" in hlo and "f32[40,28,28,1]" not in hlo  # each device: 10 of 40 images
    # The gradients are summed over the devices; the batch is never gathered onto one.
    assert "all-reduce" in hlo and "all-gather" not in hlo


@four_devices
def test_noise_drawn_for_a_split_batch_is_the_noise_of_the_whole():
    x = sources.load("mnist5k", "test")[0][:8]
    rng = jax.random.key(3)
    corrupt = corruptions.build(tiny_config("denoising").loss.corruption)
    vae = factory.build(tiny_config("vae").model)
    # All-zero parameters make mu = 0 and logvar = 0, so z is the reparameterisation noise itself.
    params = jax.tree.map(np.zeros_like, vae.init({"params": rng, "noise": rng}, x[:1])["params"])

    def draws(x):
        _, aux = vae.apply({"params": params}, x, train=True, rngs={"noise": rng})
        return corrupt(x, rng), aux["z"]

    split = jax.jit(draws)(parallel.shard_batch(x, parallel.make_mesh(4)))
    whole = jax.jit(draws)(jax.device_put(x, jax.devices()[0]))
    assert all(len(a.addressable_shards) == 4 for a in split)
    chex.assert_trees_all_equal(jax.device_get(split), jax.device_get(whole))


def _short_vae() -> ml_collections.ConfigDict:
    """The test-size VAE for one epoch of 20 steps of 200 images, in chunks of 10."""
    return tiny_config("vae", train__epochs=1, train__batch_size=200, train__chunk=10)


@pytest.fixture(scope="module")
def four_device_run(tmp_path_factory):
    """The short VAE trained on 4 devices: its final state and last metrics row."""
    return loop.train_and_evaluate(
        _short_vae(), tmp_path_factory.mktemp("four"), mesh=parallel.make_mesh(4)
    )


@four_devices
def test_four_device_run_is_bitwise_reproducible(tmp_path, four_device_run):
    first, first_row = four_device_run
    again, again_row = loop.train_and_evaluate(_short_vae(), tmp_path, mesh=parallel.make_mesh(4))
    chex.assert_trees_all_equal(jax.device_get(again.params), jax.device_get(first.params))
    chex.assert_trees_all_equal(jax.device_get(again.opt_state), jax.device_get(first.opt_state))
    assert again_row["test/loss"] == first_row["test/loss"]


@four_devices
def test_checkpoint_written_on_four_devices_restores_on_one_and_two_and_continues(
    tmp_path, capsys, four_device_run
):
    saved, _ = loop.train_and_evaluate(
        _short_vae(), tmp_path, max_steps=10, mesh=parallel.make_mesh(4)
    )
    for n in (1, 2):  # asked to stop at step 10 again, the run restores its checkpoint and stops
        restored, _ = loop.train_and_evaluate(
            _short_vae(), tmp_path, max_steps=10, mesh=parallel.make_mesh(n)
        )
        assert len(jax.tree.leaves(restored.params)[0].sharding.device_set) == n
        chex.assert_trees_all_equal(jax.device_get(restored.params), jax.device_get(saved.params))
        chex.assert_trees_all_equal(
            jax.device_get(restored.opt_state), jax.device_get(saved.opt_state)
        )
    resumed, row = loop.train_and_evaluate(_short_vae(), tmp_path, mesh=parallel.make_mesh(1))
    assert f"resumed {tmp_path} at step 10" in capsys.readouterr().out
    assert int(resumed.step) == 20
    assert [r["epoch"] for r in checkpoint.read_metrics(tmp_path)] == [1]
    whole, whole_row = four_device_run  # the same 20 steps without a stop, all on 4 devices
    assert_trained_alike(_leaves(resumed.params), _leaves(whole.params), _short_vae().opt.lr)
    np.testing.assert_allclose(row["test/loss"], whole_row["test/loss"], rtol=1e-5)


@four_devices
def test_batch_that_does_not_divide_over_the_devices_is_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"batch_size=150 does not divide over the 4 devices.*\(148 or 152\)"
    ):
        loop.train_and_evaluate(tiny_config("vae"), tmp_path, mesh=parallel.make_mesh(4))
    assert not (tmp_path / "checkpoints").exists()


@one_device
def test_more_devices_than_the_process_has_are_refused():
    with pytest.raises(ValueError, match=r"--devices=2, but each process sees 1 cpu device"):
        parallel.make_mesh(2)


@one_device
def test_command_line_splits_over_the_devices_asked_for(tmp_path):
    mlp = "mlp"  # batch 200: it divides over 4, not over 3
    out = run_python(
        "-m", "aejax.cli", "train", f"--config={mlp}", f"--workdir={tmp_path}", "--devices=3",
        devices=4,
    )  # fmt: skip
    assert "devices: 3 cpu in 1 process(es)" in out.stdout, out.stderr[-2000:]
    assert (
        out.returncode != 0
        and "train.batch_size=200 does not divide over the 3 devices" in out.stderr
    )


@one_device
def test_multi_process_settings_must_come_together(monkeypatch):
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    with pytest.raises(
        ValueError, match=r"missing --coordinator_address \(or \$JAX_COORDINATOR_ADDRESS\)$"
    ):
        parallel.initialize(None, 2, None)


@one_device
@pytest.mark.slow
def test_two_processes_train_as_one(tmp_path):
    outputs = run_two_processes(__file__, tmp_path)
    first, second = (list(np.load(tmp_path / f"{i}.npz").values()) for i in range(2))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    alone, _ = loop.train_and_evaluate(_short_vae(), tmp_path / "alone")
    assert_trained_alike(first, _leaves(alone.params), _short_vae().opt.lr)
    assert "epoch 1/1" in outputs[0] and "epoch" not in outputs[1]  # process 0 reports alone
    assert [r["epoch"] for r in checkpoint.read_metrics(tmp_path / "run")] == [1]
    assert (tmp_path / "run" / "samples.png").stat().st_size > 1000
    assert checkpoint.manager(tmp_path / "run", 3).latest_step() == 20


if __name__ == "__main__":  # one process of test_two_processes_train_as_one
    _, port, process_id, workdir, out = sys.argv
    parallel.initialize(f"localhost:{port}", 2, int(process_id))
    state, _ = loop.train_and_evaluate(_short_vae(), workdir)
    np.savez(out, *_leaves(state.params))
