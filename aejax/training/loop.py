"""Training and evaluation: `train_and_evaluate(config, workdir)` is the whole run.

The dataset lives on the device, as uint8 when its pixels are 8-bit (a quarter of float32's
memory), scaled to [0, 1] where a batch is gathered. Each epoch is a permutation drawn on the
device, cut into batches of indices; compiled chunks of `train.chunk` steps (a `lax.scan`)
gather their batches from the on-device array, so the host only dispatches chunks and reads
metrics once an epoch.
Randomness is a function of (seed, step), which is why a resumed run continues exactly.
A training set too big for the device streams from disk instead (`aejax/data/stream.py`): the same
rows in the same order, handed to the same compiled chunk as batches rather than indices.
On several devices the same chunks run data-parallel (`aejax/training/parallel.py`): the indices of each
batch are split over the devices, the dataset and the train state replicated.
"""

import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from flax.training import train_state

from aejax import compiled, models
from aejax.data import binarize, sources, stream, subsets
from aejax.data.dataset import Dataset, as_float, coerce, hold_out
from aejax.evaluation import figures
from aejax.models import bottlenecks
from aejax.objectives import autoencoding, classification, layerwise, prior_nll
from aejax.training import checkpoint, finite_guard, parallel, progress, transfer, validate

OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw}


class TrainState(train_state.TrainState):
    """flax's TrainState and the model's mutable collections (an EMA codebook's counts)."""

    collections: dict = struct.field(default_factory=dict)


def restore_state(mngr, state: TrainState, extra: dict | None = None) -> TrainState | None:
    """`checkpoint.restore_latest` into the structure of `state`. A workdir made before train
    states carried mutable collections holds flax's TrainState: a model without collections
    restores it as that."""
    try:
        return checkpoint.restore_latest(mngr, state, extra)
    except ValueError:
        if state.collections:
            raise
        fields = {k: getattr(state, k) for k in ("step", "apply_fn", "params", "tx", "opt_state")}
        restored = checkpoint.restore_latest(mngr, train_state.TrainState(**fields), extra)
        if restored is None:
            return None
        return state.replace(step=restored.step, params=restored.params, opt_state=restored.opt_state)


def _optimizer(name: str, lr) -> optax.GradientTransformation:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr)


def make_optimizer(
    cfg: ml_collections.ConfigDict, assigned: tuple[str, ...] = ()
) -> optax.GradientTransformation:
    """The optimiser `cfg` (the `opt` group) describes. Top-level parameter groups named in
    `cfg.parts` get optimisers of their own, and `assigned` groups (`models.assigned_groups`)
    plain SGD at rate 1; one update applies them all (`optax.partition`)."""
    lr = cfg.lr
    if cfg.lr_boundaries:  # piecewise constant: multiplied by lr_decay at each boundary step
        lr = optax.piecewise_constant_schedule(cfg.lr, {int(b): cfg.lr_decay for b in cfg.lr_boundaries})
    tx = _optimizer(cfg.name, lr)
    parts = {group: _optimizer(part.name, part.lr) for group, part in cfg.parts.items()}
    parts.update({group: optax.sgd(1.0) for group in assigned})
    if parts:
        tx = optax.partition({"main": tx, **parts}, functools.partial(_part_labels, tuple(parts)))
    return transfer.freeze_all_but(tx, cfg.trainable) if cfg.trainable else tx


def _part_labels(parts: tuple[str, ...], params: dict) -> dict:
    """Each parameter's optimiser: its top-level group's part, or "main"."""
    unknown = sorted(set(parts) - set(params))
    if unknown:
        raise ValueError(
            f"opt.parts names {unknown}, which are no top-level parameter groups of this model; "
            f"its groups are {sorted(params)}"
        )
    return {group: jax.tree.map(lambda _, g=group: g if g in parts else "main", tree) for group, tree in params.items()}


# What a run optimises, by `loss.objective`; each factory maps (model, loss config) to a LossFn.
OBJECTIVES = {
    "reconstruction": autoencoding.make_loss_fn,  # the default
    "classification": classification.make_loss_fn,  # batches are {"image", "label"}
    "layerwise": layerwise.make_layer_loss_fn,  # one phase of greedy pretraining
    "code_prior": prior_nll.make_loss_fn,  # a prior over a VQ-VAE's codes (model.name="code_prior")
}


def make_objective(model, cfg: ml_collections.ConfigDict) -> autoencoding.LossFn:
    """The loss `loss.objective` names, built for `model`."""
    if cfg.objective not in OBJECTIVES:
        raise ValueError(f"unknown loss.objective {cfg.objective!r}; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[cfg.objective](model, cfg)


def create_state(config: ml_collections.ConfigDict, example_x: jax.Array) -> TrainState:
    """Initial parameters (and mutable collections) from `fold_in(seed, "init")`, and the
    optimiser around them."""
    model = models.build(config.model)
    init_rng, noise_rng = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 0))
    example = as_float(example_x[:1])  # stored uint8 images: scaled as the step scales them
    variables = dict(model.init({"params": init_rng, "noise": noise_rng}, example))
    params = models.init_from_data(config.model, variables.pop("params"), example_x)
    tx = make_optimizer(config.opt, models.assigned_groups(config.model))
    return TrainState.create(apply_fn=model.apply, params=params, tx=tx, collections=variables)


def make_train_step(loss_fn: autoencoding.LossFn):
    """The pure step `(state, x, rng) -> (state, metrics)`: one gradient update on batch `x`.

    A state with mutable collections hands them to the loss and keeps what it returns; the one
    update applies every optimiser of `make_optimizer`'s partition."""

    def train_step(state, x, rng):
        state_kw = {"collections": state.collections} if state.collections else {}
        grads, aux = jax.grad(loss_fn, has_aux=True)(state.params, x, rng, True, step=state.step, **state_kw)
        metrics, collections = aux if state_kw else (aux, state.collections)
        return state.apply_gradients(grads=grads, collections=collections), metrics

    return train_step


def gather(dataset, idx_B):
    """The batch of rows `idx_B` of the on-device `dataset` (every leaf by the same indices)."""
    return jax.tree.map(lambda a: a[idx_B], dataset)


def make_train_chunk(train_step, out_sharding: jax.sharding.Sharding | None = None, take=gather):
    """`train_chunk(state, dataset, inputs_C, rng) -> (state, metrics_C)`, compiled once per C.

    Step s draws its noise from `fold_in(rng, s)` and trains on `take(dataset, inputs_C[s])`:
    by default `inputs_C` are batches of indices into the on-device `dataset` (images, or a
    dict of images and labels); a streamed run passes the batches themselves
    (`stream.StreamedBatches.take`). A chunk of one step compiles no loop at all: XLA:CPU ran
    the conv AE's step 3x slower inside a `lax.scan`, even a fully unrolled one. On a mesh,
    `inputs_C` come sharded over the batch and `out_sharding` keeps the new state and metrics
    replicated.
    """

    def body(state, dataset, inputs, rng):
        batch = as_float(take(dataset, inputs))  # uint8 images scaled to [0, 1] here
        return train_step(state, batch, jax.random.fold_in(rng, state.step))

    @compiled.jit(donate_argnums=0, out_shardings=out_sharding)
    def train_chunk(state, dataset, inputs_C, rng):
        if jax.tree.leaves(inputs_C)[0].shape[0] == 1:
            state, metrics = body(state, dataset, jax.tree.map(lambda a: a[0], inputs_C), rng)
            return state, jax.tree.map(lambda m: m[None], metrics)
        return jax.lax.scan(lambda st, inputs: body(st, dataset, inputs, rng), state, inputs_C)

    return train_chunk


class CompileClock:
    """Compiles jitted functions ahead of their first call and sums the seconds spent tracing
    and compiling in `seconds`, so that an epoch's speed counts training alone."""

    def __init__(self):
        self.seconds = 0.0

    def compile(self, jitted, *args):
        start = time.perf_counter()
        executable = jitted.lower(*args).compile()
        self.seconds += time.perf_counter() - start
        return executable

    def per_chunk_length(self, train_chunk):
        """`train_chunk` compiled once for each chunk length it is called with."""
        executables = {}

        def call(state, dataset, inputs_C, rng):
            length = jax.tree.leaves(inputs_C)[0].shape[0]
            if length not in executables:
                executables[length] = self.compile(train_chunk, state, dataset, inputs_C, rng)
            return executables[length](state, dataset, inputs_C, rng)

        return call


def make_evaluate(loss_fn: autoencoding.LossFn, batch_size: int, mesh: jax.sharding.Mesh | None = None):
    """`evaluate(params, dataset, rng) -> metrics`: dataset means, one host read for all batches.

    On a mesh, each batch that divides over its devices is split over them.
    """
    eval_batch = compiled.jit(lambda params, x, rng: loss_fn(params, as_float(x), rng, False)[1])

    def evaluate(params, dataset, rng):
        n = jax.tree.leaves(dataset)[0].shape[0]
        sums = None
        for i, start in enumerate(range(0, n, batch_size)):
            rows = slice(start, start + batch_size)
            batch = jax.tree.map(lambda a, rows=rows: a[rows], dataset)
            size = min(batch_size, n - start)
            if mesh is not None and size % mesh.size == 0:
                batch = parallel.shard_batch(batch, mesh)
            means = eval_batch(params, batch, jax.random.fold_in(rng, i))
            weighted = {k: v * size for k, v in means.items()}
            sums = weighted if sums is None else jax.tree.map(jnp.add, sums, weighted)
        return {k: float(v) / n for k, v in jax.device_get(sums).items()}

    return evaluate


def epoch_batches(rng: jax.Array, n: int, batch_size: int) -> jax.Array:
    """The epoch's shuffled indices as [steps, batch]; the incomplete last batch is dropped."""
    steps = n // batch_size
    return jax.random.permutation(rng, n)[: steps * batch_size].reshape(steps, batch_size)


def as_dataset(config: ml_collections.ConfigDict, images, labels):
    """What the steps gather batches from: the images, or `{"image", "label"}` to classify."""
    if config.loss.objective == "classification":
        return {"image": images, "label": labels}
    return images


class DeviceBatches:
    """The training set on the device: a chunk's inputs are its batches' indices, gathered in the
    compiled step. The other batch source, with the same methods, is `stream.StreamedBatches`."""

    take = staticmethod(gather)

    def __init__(self, dataset, mesh: jax.sharding.Mesh, epoch_order):
        self.dataset = parallel.replicate(dataset, mesh)
        self.mesh, self.epoch_order = mesh, epoch_order
        self._epoch, self._idx = None, None

    def chunk(self, epoch: int, begin: int, end: int) -> jax.Array:
        if epoch != self._epoch:  # each device gathers its own rows
            self._idx = parallel.shard_batch(self.epoch_order(epoch), self.mesh, batch_axis=1)
            self._epoch = epoch
        return self._idx[begin:end]

    def checkpoint_items(self, restoring: bool) -> dict:
        return {}  # the order is a function of (seed, epoch): nothing to save

    def check_restored(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


def load_splits(
    config: ml_collections.ConfigDict, train=None, test=None
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


def _check(config: ml_collections.ConfigDict, n: int, name: str) -> None:
    t = config.train
    if not 1 <= t.batch_size <= n:
        raise ValueError(
            f"train.batch_size={t.batch_size} must be between 1 and the {n} training "
            f"images of {name!r}"
        )


def epoch_line(row: dict, epochs: int) -> str:
    """One progress line: losses, then speed, and compilation apart when the epoch compiled."""
    losses_text = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if "/" in k)
    compiling = f" + {row['compile_seconds']:.2f}s compiling" if row["compile_seconds"] else ""
    return (
        f"epoch {row['epoch']}/{epochs}  {losses_text}  "
        f"{row['samples_per_s']:,.0f} samples/s  {row['epoch_seconds']:.2f}s{compiling}"
    )


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    max_steps: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    train: Dataset | np.ndarray | tuple | None = None,
    test: Dataset | np.ndarray | tuple | None = None,
    resume_changes: tuple[str, ...] = (),
) -> tuple[TrainState, dict]:
    """Trains `config` in `workdir`, resuming it if it has a checkpoint.

    The data are `train` and `test` when given (see `load_splits`), else `config.data`'s. The
    model takes its image shape (and a classifier its number of classes) from the data: the
    config recorded in `workdir` says what the run trained on.

    Returns the final state and the last epoch's metrics (empty if no epoch ended here).

    `max_steps` stops early after that many steps in all, with a checkpoint, as a preempted
    job would; running again in the same workdir continues where it stopped.

    `mesh` (default: all devices, `parallel.make_mesh()`) trains data-parallel: each batch is
    split over its devices, and the same seed gives the same run on any number of them.

    `resume_changes` names fields (`checkpoint.RESUMABLE_FIELDS`, such as "opt.lr") that may
    differ from the config the workdir was made with: a diverged run resumes from its last
    finite checkpoint with a lower learning rate; "data" (`checkpoint.DATA_CHANGE`) continues it
    on data other than the workdir's. A run that diverges stops with
    `finite_guard.TrainingDiverged` before saving anything non-finite.
    """
    validate.run_args(workdir, max_steps)
    validate.config(config)
    workdir = Path(workdir)
    mesh = parallel.make_mesh() if mesh is None else mesh
    log = functools.partial(print, flush=True) if parallel.is_main_process() else lambda line: None
    with parallel.main_process_first():  # process 0 prepares a dataset the others then read
        streamed = train is None and stream.wanted(config)
        if streamed:  # the test set in memory, the training set read as it trains
            train_file = stream.RecordFile(config.data.name, "train")
            test = sources.from_config(config.data, "test")
    if streamed:
        # The first row stands in for the data where the model is shaped and initialised; the
        # test split has every class the training split has.
        example, n, num_classes = train_file.dataset([0]), len(train_file), test.num_classes
        fingerprint = {"train": train_file.fingerprint(), "test": test.fingerprint()}
    else:
        train, test = load_splits(config, train, test)
        if config.data.label_fraction is not None:  # a stratified labelled subset, the same for every seed
            fraction, seed = config.data.label_fraction, config.data.subset_seed
            train = train.take(subsets.stratified_subset(train.labels, fraction, seed))
        example, n, num_classes = train, len(train), train.num_classes
        fingerprint = {"train": train.fingerprint(), "test": test.fingerprint()}
    _check(config, n, example.name)
    config = config.copy_and_resolve_references()
    if config.data.path:  # recorded as unused, not as the default dataset's name
        config.data.name = ""
    config.model = models.fit_to_data(config.model, example.image_shape, num_classes, n)
    parallel.check_batch_size(config.train.batch_size, mesh)
    model = models.build(config.model)
    loss_fn = make_objective(model, config.loss)
    train_step = binarize.on_train_batches(config, make_train_step(loss_fn))
    evaluate = make_evaluate(loss_fn, config.train.eval_batch_size, mesh)

    root = jax.random.key(config.seed)
    step_rng, shuffle_rng, eval_rng, figure_rng = (jax.random.fold_in(root, i) for i in (1, 2, 3, 4))
    state = parallel.replicate(create_state(config, example.images), mesh)
    figure_x = binarize.test_images(config.data, test.images)  # process 0 draws the figures alone
    batch_size, chunk = config.train.batch_size, config.train.chunk

    clock = CompileClock()
    epoch_order = clock.compile(  # epoch -> its batches of row indices, [steps, batch]
        compiled.jit(lambda epoch: epoch_batches(jax.random.fold_in(shuffle_rng, epoch), n, batch_size)), 0
    )

    if streamed:
        structure = functools.partial(as_dataset, config)
        batches = stream.StreamedBatches(config, mesh, train_file, epoch_order, structure)
    else:
        batches = DeviceBatches(as_dataset(config, train.images, train.labels), mesh, epoch_order)
    train_chunk = clock.per_chunk_length(make_train_chunk(train_step, parallel.replicated(mesh), batches.take))
    test_set = parallel.replicate(as_dataset(config, figure_x, test.labels), mesh)
    # The config proved buildable; a workdir made by another config or on other data is refused.
    changes = checkpoint.claim_workdir(workdir, config, resume_changes, fingerprint)

    mngr = checkpoint.manager(workdir, config.train.keep_checkpoints, writer=True)
    events = None
    try:  # closed whatever happens: a stopped run leaves no writer holding its files
        restored = restore_state(mngr, state, batches.checkpoint_items(restoring=True))
        if restored is not None:
            state = restored
            batches.check_restored(int(state.step))
            log(f"resumed {workdir} at step {int(state.step)}")
        elif config.train.init_from:  # a fresh run that starts from another run's parameters
            params = transfer.take_params(state.params, config.train.init_from)
            state = parallel.replicate(state.replace(params=params), mesh)
        step = int(state.step)
        checkpoint.truncate_metrics(workdir, step)
        events = progress.EventLog(workdir, step)
        if changes:
            checkpoint.record_changes(workdir, step, changes)
            log(f"continuing from step {step} with {changes}")
        unchecked = []  # (first step, metrics) of the chunks trained since the state was last checked

        def check_finite():  # at a save or an epoch's end, where the host waits for the device anyway
            where = finite_guard.first_bad_step(state, unchecked, step)
            if where is not None:
                raise finite_guard.stop(where, mngr.latest_step(), mngr.directory, config.opt.lr)
            unchecked.clear()

        steps_per_epoch = n // batch_size
        total_steps = config.train.epochs * steps_per_epoch
        stop_at = total_steps if max_steps is None else min(max_steps, total_steps)
        row, reported = {}, 0.0  # compile seconds already in a row: the setup's go in the first
        collapse_warned = False  # once a run: a collapsed codebook rarely recovers
        if step >= total_steps:
            log(f"{workdir} is complete ({step} steps); rewriting its figures")
        while step < stop_at:
            epoch, offset = divmod(step, steps_per_epoch)
            start_time, clock_at_start, chunk_metrics = time.perf_counter(), clock.seconds, []
            bar = progress.epoch_bar(epoch, config.train.epochs, steps_per_epoch, offset)
            # Chunks start at multiples of `chunk` within the epoch, whether or not the run resumed.
            for begin in range(offset, steps_per_epoch, chunk):
                end = min(begin - begin % chunk + chunk, steps_per_epoch)
                inputs = batches.chunk(epoch, begin, end)
                state, metrics = train_chunk(state, batches.dataset, inputs, step_rng)
                chunk_metrics.append(metrics)
                bar.update(end - begin)  # dispatched, not yet run: no host sync
                unchecked.append((step, metrics))
                previous, step = step, step + end - begin
                if step // config.train.save_every_steps > previous // config.train.save_every_steps:
                    check_finite()
                    checkpoint.save(mngr, step, state, batches.checkpoint_items(restoring=False))
                if step >= stop_at:
                    break
            train_metrics = jax.device_get(chunk_metrics)
            bar.close()
            seconds = time.perf_counter() - start_time - (clock.seconds - clock_at_start)
            compile_seconds, reported = clock.seconds - reported, clock.seconds
            if step % steps_per_epoch:  # stopped inside an epoch: no epoch line to write
                break
            check_finite()
            train_means = {k: float(np.mean(np.concatenate([m[k] for m in train_metrics]))) for k in train_metrics[0]}
            test_means = evaluate(state.params, test_set, eval_rng)
            samples = (steps_per_epoch - offset) * batch_size
            row = {
                "epoch": epoch + 1,
                "step": step,
                **{f"train/{k}": v for k, v in train_means.items()},
                **{f"test/{k}": v for k, v in test_means.items()},
                "epoch_seconds": seconds,  # training alone: compiling is apart
                "compile_seconds": compile_seconds,
                "samples_per_s": samples / seconds,
            }
            checkpoint.append_metrics(workdir, row)
            events.write(row)
            log(epoch_line(row, config.train.epochs))
            warning = None if collapse_warned else bottlenecks.collapse_warning(row, config)
            if warning:
                log(warning)
                collapse_warned = True
        if mngr.latest_step() != step:
            check_finite()
            checkpoint.save(mngr, step, state, batches.checkpoint_items(restoring=False))
    finally:
        mngr.close()
        batches.close()
        if events is not None:
            events.close()
    if step >= total_steps and parallel.is_main_process():
        params = jax.device_get(state.params)
        figures.write_figures(workdir, model, params, figure_x, config, figure_rng, test.labels)
    return state, row
