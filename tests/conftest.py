"""Shared test helpers: experiment configs loaded by name, shrunk to test size, and their
metrics at initialisation (where training starts); IDX files written, real digits reshaped;
fixtures that keep tests off the network and the caller's data folders; and runs trained once
per session for the tests that read them."""

import atexit
import gzip
import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

from aejax import configs
from aejax.data import sources
from aejax.data.builders import IDX_FILES, AejaxMnist
from aejax.evaluation import figures
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training import loop
from aejax.training.state import create_state
from aejax.training.step import make_evaluate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

# Many tests train runs whose programs are alike (the same tiny configs, the same evaluation),
# each compiled afresh: XLA's compilation cache, in a folder of this test run alone, compiles
# each such program once (14% less CPU time over the runs of test_loop, test_api, test_zoo and
# test_checkpoint). It must be set before anything is compiled, so here, at import.
_XLA_CACHE = tempfile.mkdtemp(prefix="aejax-tests-xla-cache-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.3)  # not each small op's
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def load_config(name: str) -> ml_collections.ConfigDict:
    return configs.load(name)


def initial_test_metrics(config: ml_collections.ConfigDict) -> dict[str, float]:
    """The test metrics of `config`'s model at its initial parameters: where training starts."""
    test_x, _ = sources.load(config.data.name, "test")
    state = create_state(config, test_x)
    loss_fn = autoencoding.make_loss_fn(factory.build(config.model), config.loss)
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


def eight_unit_run(workdir: Path):
    """An mlp of 8 ReLU units trained 2 epochs on 4,000 mnist5k digits, and the digits: a run
    whose codes a sampler is fitted to in seconds."""
    import aejax

    x = sources.load("mnist5k", "train")[0][:4000]
    return aejax.fit("mlp", train=x, workdir=workdir, train__epochs=2, model__encoder_widths=(8,)), x


def write_idx(path, array: np.ndarray) -> str:
    """Writes `array` as an IDX file, gzipped when `path` ends in .gz; returns the MD5 of its
    uncompressed bytes."""
    code = {np.uint8: 0x08, np.int32: 0x0C}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if str(path).endswith(".gz") else payload)
    return hashlib.md5(payload).hexdigest()


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


def pytest_collection_modifyitems(config, items):
    """Tests marked `docs` run only when `-m` names them (`pytest -q -m docs tests/test_docs.py`):
    a plain `pytest -q`, or `-m "not slow"`, leaves them out."""
    if "docs" in (config.option.markexpr or ""):
        return
    docs = [item for item in items if item.get_closest_marker("docs")]
    if docs:
        config.hook.pytest_deselected(items=docs)
        items[:] = [item for item in items if not item.get_closest_marker("docs")]


@pytest.fixture
def tiny():
    """`tiny(name, max_width=16, **overrides)`: `tiny_config` as a fixture."""
    return tiny_config


@pytest.fixture
def no_aejax_env(monkeypatch):
    """Keeps the caller's AEJAX_* variables out of a test."""
    monkeypatch.delenv("AEJAX_IDX_DIR", raising=False)
    monkeypatch.delenv("AEJAX_DATA_DIR", raising=False)


@pytest.fixture
def offline(monkeypatch):
    """Makes every connection fail, so a test neither depends on the network nor touches it."""

    def refuse(address, *args, **kwargs):
        raise OSError(f"network disabled in tests ({address[0]})")

    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def tiny_idx_dir(tmp_path, monkeypatch):
    """A folder of small synthetic IDX files, some gzipped, standing in for MNIST's four, whose
    digests MNIST's builder is given in place of the real files': (folder, split -> (images,
    labels)). Synthetic so that a test can damage them and prepare them in a second."""
    rng = np.random.default_rng(0)
    arrays, md5 = {}, {}
    (tmp_path / "idx").mkdir()
    for (split, (images_name, labels_name)), n in zip(IDX_FILES.items(), [30, 12]):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        md5[images_name] = write_idx(tmp_path / "idx" / f"{images_name}.gz", images)
        md5[labels_name] = write_idx(tmp_path / "idx" / labels_name, labels)
        arrays[split] = images, labels
    monkeypatch.setattr(AejaxMnist, "MD5", md5)
    return tmp_path / "idx", arrays


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory):
    """Datasets are prepared in a folder of the test session, not in the user's TFDS folder."""
    os.environ["AEJAX_DATA_DIR"] = str(tmp_path_factory.mktemp("tensorflow_datasets"))


@pytest.fixture(scope="session")
def linear_2d_run(tmp_path_factory, _private_data_dir):
    """The shipped 784-2-784 linear AE trained on mnist5k (it finds the PCA plane), trained once
    for every test that reads it (PCA, representations, classifiers, transfer): (config, workdir,
    params). Its config and params are shared: copy before changing them."""
    config = load_config("linear")
    config.train.chunk = 20  # one compiled scan per epoch
    config.train.save_every_steps = 10_000  # one checkpoint, at the end
    workdir = tmp_path_factory.mktemp("linear_2d")
    with pytest.MonkeyPatch.context() as patch:  # its readers make figures of their own
        patch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
        state, _ = loop.train_and_evaluate(config, workdir)
    return config, workdir, state.params
