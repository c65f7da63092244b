"""A run's pieces, built once from its config and data: `setup(config) -> RunSetup`.

The training loop, `aejax.fit`, the benchmarks and the tools all train what `setup` builds: the
config fitted to the data, the model, its objective, the compiled step and evaluation, the
initial state, the random streams and the batches. So a run is the same wherever it starts.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from aejax import compiled, random_streams
from aejax.data import binarize, sources, stream, subsets
from aejax.data.dataset import Dataset, coerce, hold_out
from aejax.data.device import DeviceBatches, as_dataset, epoch_batches
from aejax.models import factory
from aejax.objectives import registry
from aejax.objectives.autoencoding import LossFn
from aejax.training import parallel, validate
from aejax.training.state import TrainState, create_state
from aejax.training.step import CompileClock, make_evaluate, make_train_step

SplitInput = Dataset | np.ndarray | tuple | None  # what a caller may pass as `train` or `test`


@dataclasses.dataclass(frozen=True)
class RunData:
    """What a run trains on and is scored on."""

    train: Dataset | stream.TrainingFile  # in memory, or read from disk as it trains
    test: Dataset
    fingerprint: dict  # of both splits: what the workdir records of its data
    figure_images: jax.Array  # the test images as scored and drawn: binarised once when dynamic
    test_set: Any  # what evaluation reads: `figure_images` (and labels), on every device


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """Everything a run trains and evaluates with, built once by `setup`."""

    config: ml_collections.ConfigDict  # as the workdir records it: the model fitted to the data
    mesh: jax.sharding.Mesh
    model: nn.Module
    loss_fn: LossFn
    train_step: Callable  # (state, batch, rng) -> (state, metrics), on binarised batches if asked
    evaluate: Callable  # (params, dataset, rng) -> metrics, the dataset's means
    state: TrainState  # the initial state on the mesh; training donates its buffers
    state_sharding: Any  # where each leaf of the state lives (`parallel.state_sharding`)
    keys: dict[str, jax.Array]  # the key of each random stream (`random_streams.STREAMS`)
    data: RunData
    batches: DeviceBatches | stream.StreamedBatches  # the training batches, chunk by chunk
    clock: CompileClock  # seconds compiling so far: the epoch order's, then the chunks'

    @property
    def steps_per_epoch(self) -> int:
        """Whole batches of the training set; the incomplete last one waits for the next epoch."""
        return len(self.data.train) // self.config.train.batch_size


def setup(
    config: ml_collections.ConfigDict,
    *,
    mesh: jax.sharding.Mesh | None = None,
    train: SplitInput = None,
    test: SplitInput = None,
) -> RunSetup:
    """The run `config` describes, on `train` and `test` when given (see `load_splits`), else
    on `config.data`'s dataset, on the devices of `mesh` (default: all), laid out with
    `train.model_parallel` of them along its "model" axis (`parallel.lay_out`).

    The model takes its image shape (and a classifier its number of classes) from the data.
    A bad config, or data it cannot train on, is refused here, before any training. A training
    set streamed from disk is read by threads that `batches.close()` ends.
    """
    validate.config(config)
    devices = (parallel.make_mesh() if mesh is None else mesh).devices
    mesh = parallel.lay_out(devices, config.train.model_parallel)
    train, test = load_data(config, train, test)
    config, train, test = normalized_vectors(config, train, test)
    _check_batch_fits(config.train.batch_size, train)
    streamed = isinstance(train, stream.TrainingFile)
    # A streamed training set is read by row, and one row stands in for it where the model is
    # shaped and initialised; the test split has every class the training split has.
    example = train.example() if streamed else train
    num_classes = (test if streamed else train).num_classes
    config = fit_config(config, example.image_shape, num_classes, len(train))
    parallel.check_batch_size(config.train.batch_size, mesh)
    model = factory.build(config.model)
    loss_fn = registry.make_objective(model, config.loss)
    keys = {name: random_streams.stream(config.seed, name) for name in random_streams.STREAMS}
    state = create_state(config, example.images, mesh)
    figure_images = binarize.test_images(config.data, test.images)  # process 0 draws figures alone
    clock = CompileClock()
    epoch_order = _epoch_order(config, keys["shuffle"], len(train), clock)
    return RunSetup(
        config=config,
        mesh=mesh,
        model=model,
        loss_fn=loss_fn,
        train_step=binarize.on_train_batches(config, make_train_step(loss_fn)),
        evaluate=make_evaluate(loss_fn, config.train.eval_batch_size, mesh),
        state=state,
        state_sharding=jax.tree.map(lambda a: a.sharding, state),
        keys=keys,
        data=RunData(
            train=train,
            test=test,
            fingerprint={"train": train.fingerprint(), "test": test.fingerprint()},
            figure_images=figure_images,
            test_set=parallel.replicate(as_dataset(config, figure_images, test.labels), mesh),
        ),
        batches=_batch_source(config, mesh, train, epoch_order),
        clock=clock,
    )


def load_data(
    config: ml_collections.ConfigDict, train: SplitInput = None, test: SplitInput = None
) -> tuple[Dataset | stream.TrainingFile, Dataset]:
    """The training set, in memory or (`stream.wanted`) read from disk as it trains, and the
    test set, in memory; a labelled subset of the training set where `data.label_fraction` asks."""
    with parallel.main_process_first():  # process 0 prepares a dataset the others then read
        if train is None and not config.data.activations and stream.wanted(config):
            return stream.training_file(config.data)
    train, test = load_splits(config, train, test)
    if config.data.label_fraction is not None:  # stratified, the same subset for every seed
        fraction, seed = config.data.label_fraction, config.data.subset_seed
        train = train.take(subsets.stratified_subset(train.labels, fraction, seed))
    return train, test


def normalized_vectors(config: ml_collections.ConfigDict, train, test) -> tuple:
    """For vector data, the splits scaled by `data.vector_scale` and `config` recording it:
    with `data.normalize="mean_square"` one scale, from the training vectors, that makes their
    mean squared norm D (as "Scaling and evaluating sparse autoencoders" normalises), so that
    one sparsity weight and learning rate suit any network's activations; and, for a model
    that reports FVU, `model.data_variance`, the scaled training vectors' total variance.
    Images pass as they are."""
    if not getattr(train, "vectors", False):
        return config, train, test
    config = config.copy_and_resolve_references()
    streamed = isinstance(train, stream.VectorFile)  # its moments come from a pass over the file
    if config.data.normalize == "mean_square":
        if config.data.vector_scale is None:
            mean_square = train.mean_square if streamed else np.mean(
                np.sum(np.square(train.images, dtype=np.float64), axis=1)
            )
            if mean_square == 0:
                raise ValueError(f"{train.name}: every vector is 0; there is nothing to learn")
            config.data.vector_scale = float(np.sqrt(train.image_shape[0] / mean_square))
        train, test = train.scaled(config.data.vector_scale), test.scaled(config.data.vector_scale)
    if "data_variance" in config.model and config.model.data_variance is None:
        if streamed:
            config.model.data_variance = train.variance
        else:
            deviations = train.images - np.mean(train.images, axis=0, dtype=np.float64)
            config.model.data_variance = float(np.mean(np.sum(np.square(deviations), axis=1)))
    if config.model.get("data_variance") == 0:
        raise ValueError(
            f"{train.name}: every training vector is the same, so no reconstruction can be "
            "scored against their variance (FVU); give vectors that differ"
        )
    return config, train, test


def load_splits(
    config: ml_collections.ConfigDict, train: SplitInput = None, test: SplitInput = None
) -> tuple[Dataset, Dataset]:
    """The train and test splits: `train` and `test` when given (a `Dataset`, an image array or
    an (images, labels) pair; without `test`, `data.test_fraction` of `train` is held out), else
    the dataset `config.data` names."""
    if train is None:
        if test is not None:
            raise ValueError("a test set was given without a training set")
        with parallel.main_process_first():  # process 0 prepares a dataset the others then read
            train, test = (sources.from_config(config.data, split) for split in sources.SPLITS)
    elif test is None:
        train, test = hold_out(coerce(train, "train"), config.data.test_fraction)
    else:
        train, test = coerce(train, "train"), coerce(test, "test")
    if train.image_shape != test.image_shape:
        raise ValueError(
            f"training images are {train.image_shape} but test images {test.image_shape}; "
            "give both splits in one shape (data.image_size resizes image files)"
        )
    if config.loss.objective == "classification" and train.labels is None:
        raise ValueError(
            f"{train.name} has no labels, and loss.objective='classification' needs them"
        )
    return train, test


def _check_batch_fits(batch_size: int, train: Dataset | stream.TrainingFile) -> None:
    if not 1 <= batch_size <= len(train):
        raise ValueError(
            f"train.batch_size={batch_size} must be between 1 and the {len(train)} training "
            f"images of {train.name!r}"
        )


def fit_config(
    config: ml_collections.ConfigDict, image_shape: tuple, num_classes: int | None, n: int
) -> ml_collections.ConfigDict:
    """`config` as the run records it: references resolved, the model fitted to `n` training
    images of `image_shape` (`factory.fit_to_data`)."""
    config = config.copy_and_resolve_references()
    if config.data.path:  # recorded as unused, not as the default dataset's name
        config.data.name = ""
    config.model = factory.fit_to_data(config.model, image_shape, num_classes, n)
    return config


def _epoch_order(
    config: ml_collections.ConfigDict, shuffle_key: jax.Array, n: int, clock: CompileClock
) -> Callable[[int], jax.Array]:
    """epoch -> its batches of row indices, [steps, batch], compiled once (on `clock`)."""
    batch_size = config.train.batch_size
    order = compiled.jit(
        lambda epoch: epoch_batches(jax.random.fold_in(shuffle_key, epoch), n, batch_size)
    )
    return clock.compile(order, 0)


def _batch_source(config, mesh, train, epoch_order) -> DeviceBatches | stream.StreamedBatches:
    """The training set on the device, or read from disk chunk by chunk, in the same order."""
    if isinstance(train, stream.TrainingFile):
        structure = functools.partial(as_dataset, config)
        return stream.StreamedBatches(config, mesh, train, epoch_order, structure)
    return DeviceBatches(as_dataset(config, train.images, train.labels), mesh, epoch_order)
