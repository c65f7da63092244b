"""Shared test helpers: experiment configs loaded by name and shrunk to test size."""

import importlib.util
import os
from pathlib import Path

import ml_collections
import pytest

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def load_config(name: str) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location(f"config_{name}", CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.fixture
def tiny():
    """`tiny(name, **overrides)`: a shipped config with narrow layers and a short run."""

    def make(name: str, **overrides) -> ml_collections.ConfigDict:
        config = load_config(name)
        config.model.encoder_widths = (32, 8) if name == "vae" else (16,)
        if "latent_dim" in config.model:
            config.model.latent_dim = 4
        config.train.epochs = 2
        config.train.chunk = 7
        config.train.save_every_steps = 10
        for key, value in overrides.items():
            *path, last = key.split("__")
            group = config
            for p in path:
                group = group[p]
            group[last] = value
        return config

    return make


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory):
    """Datasets are prepared in a folder of the test session, not in the user's TFDS folder."""
    os.environ["AEJAX_DATA_DIR"] = str(tmp_path_factory.mktemp("tensorflow_datasets"))
