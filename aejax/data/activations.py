"""Vectors computed from a trained run: one layer's outputs on a dataset's images, the data a
sparse autoencoder learns a dictionary of (`config.data.activations`, `config.data.layer`).

The run is a workdir (any model aejax trained: a classifier's code is its penultimate layer),
or the name of a shipped config, trained once on the dataset in `runs/<config>_<dataset>` and
reused from there; a workdir made for other data or another config is refused by the training
loop, so a cached network is never read on the wrong data. The images are those `data.name`
(or `data.path`) names, each split through the same network, with their labels. The vectors
are recomputed each time a run is set up, so the workdir's data fingerprint is theirs.
"""

from pathlib import Path

import ml_collections
import numpy as np

from aejax.data.dataset import Dataset

RUNS = Path("runs")  # where a shipped config named by data.activations is trained
DATA_FIELDS = ("name", "path", "image_size", "test_fraction")  # what picks the images


def source_workdir(data_cfg: ml_collections.ConfigDict) -> Path:
    """The workdir of the run `data_cfg.activations` names, trained first when it names a
    shipped config whose run is not there yet."""
    from aejax import configs  # imported here: configs import the models, which import data
    from aejax.training import checkpoint, loop

    given = data_cfg.activations
    if (Path(given) / "config.json").is_file():
        return Path(given)
    if given not in configs.names():
        raise ValueError(
            f"data.activations={given!r} is neither a run's workdir (a folder with config.json) "
            f"nor a shipped config ({', '.join(configs.names())})"
        )
    dataset = Path(data_cfg.path).stem if data_cfg.path else data_cfg.name
    workdir = RUNS / f"{given}_{dataset}"
    config = configs.load(given)
    for field in DATA_FIELDS:
        config.data[field] = data_cfg[field]
    rows = checkpoint.read_metrics(workdir) if workdir.is_dir() else []
    if not rows or rows[-1]["epoch"] < config.train.epochs:
        print(f"training the run data.activations={given!r} names in {workdir}", flush=True)
        loop.train_and_evaluate(config, workdir)  # refuses a workdir of other data or config
    return workdir


def layer_outputs(data_cfg: ml_collections.ConfigDict, split: str) -> Dataset:
    """The `split` of `data_cfg`'s images as the vectors [N, D] that layer `data_cfg.layer`
    (None: the code) of the run `data_cfg.activations` gives them, flattened, with their labels."""
    from aejax import api
    from aejax.data import sources
    from aejax.evaluation import representation

    workdir = source_workdir(data_cfg)
    run = api.load_run(workdir)
    images_cfg = data_cfg.copy_and_resolve_references()
    with images_cfg.unlocked():
        images_cfg.activations = ""
    images = sources.from_config(images_cfg, split)
    expected = tuple(run.config.model.image_shape)
    if images.image_shape != expected:
        raise ValueError(
            f"the run in {workdir} reads images {expected}, but {images.name} holds "
            f"{images.image_shape}: name the dataset it was trained on in data.name"
        )
    outputs = representation.encode(run.model, run.params, images.images, layer=data_cfg.layer)
    vectors = np.asarray(outputs, np.float32).reshape(len(images), -1)
    layer = "code" if data_cfg.layer is None else f"layer{data_cfg.layer}"
    return Dataset(vectors, images.labels, images.num_classes, f"{workdir}:{layer}:{split}")
