"""Datasets by name or path: one call finds aejax's datasets, TFDS's and a user's files, reads
them without TensorFlow, takes the IDX folder given over the environment's, and refuses an
unknown name, split or path in one short message."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from aejax.data import sources

pytestmark = pytest.mark.usefixtures("no_aejax_env", "offline")


def test_no_tensorflow_is_imported(tmp_path):
    # A fresh interpreter where TensorFlow seems installed (etils and TFDS probe for it), and
    # importing it is recorded: so the test also fails on machines without TensorFlow.
    script = f"""
import importlib.abc, importlib.machinery, sys
imported = []
class FakeTensorFlow(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return importlib.machinery.ModuleSpec(name, self)
    def exec_module(self, module):
        imported.append(module.__name__)
        raise ImportError("aejax must not import TensorFlow")
sys.meta_path.insert(0, FakeTensorFlow())
from aejax.data import sources
sources.load("mnist5k", "test", data_dir={str(tmp_path)!r})  # prepares, then reads
sources.load("mnist5k", "test", data_dir={str(tmp_path)!r})
assert not imported and "tensorflow" not in sys.modules, imported
"""
    env = {**os.environ, "PYTHONPATH": str(Path(sources.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tensorflow" not in sys.modules  # nor in this test run, after all the loads above


def test_idx_dir_argument_wins_over_the_environment(tiny_idx_dir, tmp_path, monkeypatch):
    idx_dir, arrays = tiny_idx_dir
    monkeypatch.setenv("AEJAX_IDX_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("AEJAX_DATA_DIR", str(tmp_path / "env_data"))
    _, labels = sources.load("mnist", "test", idx_dir=idx_dir)
    assert np.array_equal(labels, arrays["test"][1])
    assert (tmp_path / "env_data" / "aejax_mnist").is_dir()  # AEJAX_DATA_DIR was used
    with pytest.raises(sources.DatasetUnavailableError, match="nowhere lacks"):
        sources.load("mnist", "test", data_dir=tmp_path / "other")  # the variable is used alone


def test_unknown_name_or_split():
    with pytest.raises(ValueError, match=r"Unknown dataset 'no_such_images': neither aejax's \(mnist5k, mnist, fashion_mnist\) nor"):
        sources.load("no_such_images", "train")
    with pytest.raises(ValueError, match="valid splits: train, test"):
        sources.load("mnist", "validation")
    with pytest.raises(ValueError, match="Unknown dataset 'cifar10'; known datasets: mnist5k"):
        sources.prepared("cifar10")  # prepares aejax's own datasets only


def test_unknown_dataset_names_and_paths_are_one_short_message(tmp_path):
    with pytest.raises(ValueError, match=r"^Unknown dataset 'mnits': .*did you mean 'mnist'") as error:
        sources.load("mnits", "train")
    assert len(str(error.value)) < 300 and error.value.__cause__ is None
    with pytest.raises(FileNotFoundError, match=r"^data.path mine.npz does not exist"):
        sources.load("mine.npz", "train")
    np.savez(tmp_path / "mine.npz", x_train=np.zeros((20, 4, 4, 1), np.uint8))
    images, labels = sources.load(str(tmp_path / "mine.npz"), "train")  # a file given as the name
    assert images.shape == (18, 4, 4, 1) and labels is None


def test_load_under_tfds_mock_data(tmp_path):
    # Unmocked, this load would fail: no idx_dir, and the `offline` fixture cuts the network.
    with tfds.testing.mock_data(num_examples=7):
        images, labels = sources.load("mnist", "train", data_dir=tmp_path)
    assert images.shape == (7, 28, 28, 1) and images.dtype == np.float32
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0
    assert labels.shape == (7,) and labels.dtype == np.int32
    assert not any(tmp_path.iterdir())  # nothing was prepared
