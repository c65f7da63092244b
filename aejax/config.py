"""Defaults every experiment config starts from; a config file overrides only what differs."""

import importlib.util
from pathlib import Path

import ml_collections


def base() -> ml_collections.ConfigDict:
    """Everything but the model and its loss: seed, data, optimiser, loop and checkpoints."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # the only source of randomness: init, shuffling and noise derive from it
    config.data = ml_collections.ConfigDict()
    config.data.name = "mnist5k"  # mnist5k (embedded), fashion_mnist, mnist
    config.data.stream = "auto"  # training batches read from disk: auto, never, always (stream.py)
    config.data.device_bytes_budget = 4 * 2**30  # "auto" streams a training set bigger than this
    config.data.read_threads = 4  # streaming: Grain threads reading and parsing batches ahead
    config.opt = ml_collections.ConfigDict()
    config.opt.name = "adam"  # adam, adamw, sgd
    config.opt.lr = 1e-3
    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 200
    config.train.epochs = 20
    config.train.chunk = 400  # steps per compiled lax.scan call (capped at an epoch); 1 dispatches single steps
    config.train.eval_batch_size = 1000
    config.train.save_every_steps = 1000
    config.train.keep_checkpoints = 3
    return config


def load(path: str | Path) -> ml_collections.ConfigDict:
    """`get_config()` of the config file at `path`: how a variant starts from the one it varies.

    Config files are loaded by path (as `config_flags` does), not imported as a package.
    """
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"aejax_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
