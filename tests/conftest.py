"""Shared test helpers: experiment configs loaded by name, shrunk to test size, and their
metrics at initialisation (where training starts)."""

import os
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

from aejax import configs, models
from aejax.data import sources
from aejax.objectives import autoencoding
from aejax.training import loop
from aejax.training.state import create_state
from aejax.training.step import make_evaluate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def load_config(name: str) -> ml_collections.ConfigDict:
    return configs.load(name)


def initial_test_metrics(config: ml_collections.ConfigDict) -> dict[str, float]:
    """The test metrics of `config`'s model at its initial parameters: where training starts."""
    test_x, _ = sources.load(config.data.name, "test")
    state = create_state(config, test_x)
    loss_fn = autoencoding.make_loss_fn(models.build(config.model), config.loss)
    return make_evaluate(loss_fn, 1000)(state.params, test_x, jax.random.key(0))


def tiny_config(name: str, max_width: int = 16, **overrides) -> ml_collections.ConfigDict:
    """A shipped config with narrow layers and a short run; `a__b=v` overrides `config.a.b`.

    Layers keep their number (a 784-2-784 code stays 2-D) but are at most `max_width` wide
    (conv layers: that many channels).
    """
    config = load_config(name)
    if config.model.get("encoder_widths"):
        narrow = tuple(min(w, max_width) for w in config.model.encoder_widths)
        config.model.encoder_widths = (32, 8) if name == "vae" else narrow
    for key in ("encoder_features", "decoder_features"):
        if config.model.get(key):
            config.model[key] = tuple(min(c, max_width) for c in config.model[key])
    if config.model.get("latent_dim"):
        config.model.latent_dim = 4
    config.train.epochs = 2
    config.train.chunk = 7
    config.train.save_every_steps = 10
    return configs.override(config, **overrides)


def assert_trained_alike(got: list, want: list, lr: float):
    """The same training run with its gradients summed in another order (other devices, other
    processes): every weight within a fifth of one Adam step, `lr`.

    Adam divides each gradient by its own running scale, so a gradient that nearly cancels over
    the batch, summed in another order, moves its weight by a different fraction of `lr`: a
    two-process VAE ends up to 7.3e-5 (lr 1e-3) from the one-process run. A wrong batch moves
    most weights by more than `lr`: the same run on half batches differs by a median of 1.1e-3.
    """
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=lr / 5)


@pytest.fixture
def tiny():
    """`tiny(name, max_width=16, **overrides)`: `tiny_config` as a fixture."""
    return tiny_config


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory):
    """Datasets are prepared in a folder of the test session, not in the user's TFDS folder."""
    os.environ["AEJAX_DATA_DIR"] = str(tmp_path_factory.mktemp("tensorflow_datasets"))


@pytest.fixture(scope="session")
def linear_2d_run(tmp_path_factory, _private_data_dir):
    """The shipped 784-2-784 linear AE trained on mnist5k (it finds the PCA plane), shared by
    the tests of representations and classifiers: (config, workdir, params)."""
    config = load_config("linear")
    config.train.chunk = 20  # one compiled scan per epoch
    config.train.save_every_steps = 10_000  # one checkpoint, at the end
    workdir = tmp_path_factory.mktemp("linear_2d")
    state, _ = loop.train_and_evaluate(config, workdir)
    return config, workdir, state.params
