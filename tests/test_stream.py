"""Streaming from disk: the same parameters as the in-memory path, bit for bit, an exact resume
(after a stop or a kill) with the Grain iterator's state in the checkpoint, and each device's
shard read from its own rows.

`test_four_device_session` reruns this file with JAX on four CPU devices (tests/sessions.py); the
4-device tests run there.
"""

import json
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest
from conftest import assert_trained_alike, load_config, tiny_config
from sessions import (
    ROOT,
    assert_four_device_session_passes,
    device_env,
    four_devices,
    one_device,
    run_two_processes,
)
from test_parallel import _leaves, _short_vae

from aejax.data import stream
from aejax.data.device import epoch_batches
from aejax.training import checkpoint, loop, parallel, transfer


def _config(name="mlp", stream_mode="always", **overrides):
    """The test-size `name` on mnist5k: 20 steps an epoch of 200 images, chunks of 7."""
    return tiny_config(name, data__stream=stream_mode, **overrides)


def _pipeline_state(workdir, step, process=0, processes=1) -> dict:
    """The Grain iterator state that process `process` saved in the checkpoint of `step`."""
    pipeline = workdir / "checkpoints" / str(step) / "pipeline"
    return json.loads((pipeline / f"process_{process}-of-{processes}.json").read_text())


@one_device
@pytest.mark.slow
def test_four_device_session(tmp_path):
    assert_four_device_session_passes(__file__, tmp_path)


@one_device
@pytest.mark.parametrize("name", ["mlp", "vae", "conv_classifier"])  # images; noise; images+labels
@pytest.mark.slow
def test_streamed_run_equals_in_memory_run_bitwise(tmp_path, name):
    memory, memory_row = loop.train_and_evaluate(_config(name, "never"), tmp_path / "memory")
    streamed, streamed_row = loop.train_and_evaluate(_config(name), tmp_path / "streamed")
    chex.assert_trees_all_equal(streamed.params, memory.params)
    chex.assert_trees_all_equal(streamed.opt_state, memory.opt_state)
    assert streamed_row["test/loss"] == memory_row["test/loss"]
    assert not (tmp_path / "memory" / "checkpoints" / "40" / "pipeline").exists()
    assert _pipeline_state(tmp_path / "streamed", 40) == {"next_index": 40}
    # A streamed run's parameters are read as any run's are (train.init_from, transfer).
    chex.assert_trees_all_equal(transfer.load_params(tmp_path / "streamed"), streamed.params)


@one_device
@pytest.mark.slow
def test_streamed_run_stopped_inside_an_epoch_resumes_exactly(tmp_path):
    config = _config(train__epochs=3)
    whole, whole_row = loop.train_and_evaluate(config, tmp_path / "whole")
    loop.train_and_evaluate(config, tmp_path / "cut", max_steps=30)
    stopped = checkpoint.manager(tmp_path / "cut", 3).latest_step()
    assert stopped == 34  # the chunk of epoch 2's steps 7 to 14 crossed step 30
    assert _pipeline_state(tmp_path / "cut", stopped) == {"next_index": stopped}
    resumed, resumed_row = loop.train_and_evaluate(config, tmp_path / "cut")
    chex.assert_trees_all_equal(resumed.params, whole.params)
    chex.assert_trees_all_equal(resumed.opt_state, whole.opt_state)
    assert resumed_row["test/loss"] == whole_row["test/loss"]
    assert [r["epoch"] for r in checkpoint.read_metrics(tmp_path / "cut")] == [1, 2, 3]


@one_device
def test_pipeline_state_that_disagrees_with_the_step_is_refused(tmp_path):
    loop.train_and_evaluate(_config(), tmp_path, max_steps=10)
    path = tmp_path / "checkpoints" / "14" / "pipeline" / "process_0-of-1.json"
    path.write_text(json.dumps({"next_index": 13}))
    with pytest.raises(ValueError, match="step 14 holds a data pipeline at step 13"):
        loop.train_and_evaluate(_config(), tmp_path)


def _shipped_mlp(overrides: dict):
    """mlp streamed, with `overrides` ("group.field": value)."""
    config = load_config("mlp")
    config.data.stream = "always"
    for key, value in overrides.items():
        group, field = key.split(".")
        config[group][field] = value
    return config


@one_device
@pytest.mark.slow
def test_streamed_run_killed_mid_run_resumes_exactly(tmp_path):
    overrides = {"train.epochs": 10, "train.chunk": 2, "train.save_every_steps": 4}
    cut = tmp_path / "cut"
    command = [
        sys.executable, "-m", "aejax.cli", "train", "--config=mlp",
        f"--workdir={cut}", "--config.data.stream=always",
        *(f"--config.{k}={v}" for k, v in overrides.items()),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=device_env(1), cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300

    def latest():  # read from the folder names: a reader's manager can race the run's rotation
        folder = cut / "checkpoints"
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        return max((int(name) for name in names if name.isdigit()), default=0)

    while latest() < 40 and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint at step 40 within 5 minutes"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert 40 <= checkpoint.manager(cut, 3).latest_step() < 200
    config = _shipped_mlp(overrides)
    resumed, _ = loop.train_and_evaluate(config, cut)
    whole, _ = loop.train_and_evaluate(config, tmp_path / "whole")
    chex.assert_trees_all_equal(resumed.params, whole.params)
    chex.assert_trees_all_equal(resumed.opt_state, whole.opt_state)


@one_device
def test_auto_streams_a_training_set_bigger_than_the_budget():
    mnist5k_train_bytes = 4000 * (28 * 28 + 4)  # uint8 images and int32 labels
    assert stream.RecordFile("mnist5k", "train").device_bytes() == mnist5k_train_bytes
    assert stream.wanted(_config("mlp", "auto", data__device_bytes_budget=mnist5k_train_bytes - 1))
    assert not stream.wanted(_config("mlp", "auto", data__device_bytes_budget=mnist5k_train_bytes))
    assert not stream.wanted(_config("mlp", "never", data__device_bytes_budget=0))


@one_device
def test_bad_stream_settings_get_clear_errors():
    with pytest.raises(ValueError, match=r"unknown data.stream 'sometimes'; choose one of"):
        stream.wanted(_config(stream_mode="sometimes"))
    config = _config()
    config.data.label_fraction = 0.1
    with pytest.raises(ValueError, match=r"data.label_fraction=0.1 needs the whole training set"):
        stream.wanted(config)


@four_devices
def test_each_device_holds_the_rows_of_its_own_part_of_the_batch():
    config, mesh = _config(train__batch_size=40), parallel.make_mesh(4)
    file = stream.RecordFile("mnist5k", "train")
    order = np.asarray(epoch_batches(jax.random.key(5), len(file), 40))
    batches = stream.StreamedBatches(config, mesh, file, lambda epoch: order, lambda x, y: x)
    assert batches.rows == slice(0, 40)  # one process: it reads every row of the batch
    chunk = batches.chunk(0, 0, 3)
    assert chunk.shape == (3, 40, 28, 28, 1) and len(chunk.addressable_shards) == 4
    rows_per_device = set()
    for shard in chunk.addressable_shards:
        steps, rows = shard.index[:2]
        assert shard.data.shape == (3, 10, 28, 28, 1)
        expected = np.stack([file.read(order[s, rows])[0] for s in range(3)])
        np.testing.assert_array_equal(np.asarray(shard.data), expected)
        rows_per_device.add((rows.start, rows.stop))
    assert rows_per_device == {(0, 10), (10, 20), (20, 30), (30, 40)}
    batches.close()


@four_devices
def test_streamed_run_on_four_devices_equals_in_memory_run_on_four(tmp_path):
    def run(mode):
        config = _config(stream_mode=mode, train__batch_size=200, train__epochs=1)
        return loop.train_and_evaluate(config, tmp_path / mode, mesh=parallel.make_mesh(4))[0]

    streamed, memory = run("always"), run("never")
    assert len(jax.tree.leaves(streamed.params)[0].sharding.device_set) == 4
    chex.assert_trees_all_equal(_leaves(streamed.params), _leaves(memory.params))


def _short_streamed_vae():
    """test_parallel's short VAE (one epoch: 20 steps of 200 images, every row once), streamed."""
    config = _short_vae()
    config.data.stream = "always"
    return config


@one_device
@pytest.mark.slow
def test_two_processes_each_read_only_their_half_of_every_batch(tmp_path):
    run_two_processes(__file__, tmp_path)
    results = [dict(np.load(tmp_path / f"{i}.npz")) for i in range(2)]
    halves = [r.pop("rows_read") for r in results]
    assert all(h.shape == (20, 100) for h in halves)  # 20 steps, 100 of each batch's 200 rows
    assert sorted(np.concatenate([h.ravel() for h in halves])) == list(range(4000))
    for i in range(2):
        assert _pipeline_state(tmp_path / "run", 20, i, 2) == {"next_index": 20}
    alone_config = _short_streamed_vae()
    alone, _ = loop.train_and_evaluate(alone_config, tmp_path / "alone")
    assert_trained_alike(list(results[0].values()), _leaves(alone.params), alone_config.opt.lr)


if __name__ == "__main__":  # one process of the 2-process test above
    _, port, process_id, workdir, out = sys.argv
    parallel.initialize(f"localhost:{port}", 2, int(process_id))
    rows_read, read = [], stream.RecordFile.read

    def recording_read(self, rows):
        if len(rows) > 1:  # a batch, not the first row that initialises the parameters
            rows_read.append(np.asarray(rows))
        return read(self, rows)

    stream.RecordFile.read = recording_read
    state, _ = loop.train_and_evaluate(_short_streamed_vae(), workdir)
    params = {f"param{i}": leaf for i, leaf in enumerate(_leaves(state.params))}
    np.savez(out, rows_read=np.stack(rows_read), **params)
