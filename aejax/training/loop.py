"""Training and evaluation: `train_and_evaluate(config, workdir)` is the whole run.

The run is built once (`setup.py`); the loop trains it chunk by chunk, each chunk of
`train.chunk` steps one compiled call (`step.py`) on batches from the device (`data/device.py`)
or streamed from disk (`data/stream.py`), so the host only dispatches chunks and reads metrics
once an epoch. It saves and checks checkpoints on the way, resumes from the workdir's last one,
logs each epoch, and draws the figures once the run is complete. On several devices the same
chunks run data-parallel (`parallel.py`): the indices of each batch are split over the
devices, the dataset and the train state replicated, but for a dictionary that
`train.model_parallel` splits over groups of devices.
"""

import time
from pathlib import Path

import jax
import ml_collections
import numpy as np

from aejax.evaluation import dictionary, figures
from aejax.evaluation.codebook_usage import CodebookUsage
from aejax.models import bottlenecks
from aejax.training import checkpoint, finite_guard, parallel, progress, transfer, validate
from aejax.training.setup import RunSetup, SplitInput, setup
from aejax.training.state import TrainState, restore_state
from aejax.training.step import make_train_chunk


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    max_steps: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    train: SplitInput = None,
    test: SplitInput = None,
    resume_changes: tuple[str, ...] = (),
) -> tuple[TrainState, dict]:
    """Trains `config` in `workdir`, resuming it if it has a checkpoint.

    The data are `train` and `test` when given (see `setup.load_splits`), else `config.data`'s.
    The model takes its image shape (and a classifier its number of classes) from the data:
    the config recorded in `workdir` says what the run trained on.

    Returns the final state and the last epoch's metrics (empty if no epoch ended here).

    `max_steps` stops early after that many steps in all, with a checkpoint, as a preempted
    job would; running again in the same workdir continues where it stopped.

    `mesh` (default: all devices, `parallel.make_mesh()`) trains data-parallel: each batch is
    split over its devices (over groups of `train.model_parallel` of them, which split a
    sparse autoencoder's latents), and the same seed gives the same run on any number of them.

    `resume_changes` names fields (`checkpoint.RESUMABLE_FIELDS`, such as "opt.lr") that may
    differ from the config the workdir was made with: a diverged run resumes from its last
    finite checkpoint with a lower learning rate; "data" (`checkpoint.DATA_CHANGE`) continues it
    on data other than the workdir's. A run that diverges stops with
    `finite_guard.TrainingDiverged` before saving anything non-finite.
    """
    validate.run_args(workdir, max_steps)
    workdir = Path(workdir)
    run = setup(config, mesh=mesh, train=train, test=test)
    # The config proved buildable; a workdir made by another config or on other data is refused.
    changes = checkpoint.claim_workdir(workdir, run.config, resume_changes, run.data.fingerprint)
    total_steps = run.config.train.epochs * run.steps_per_epoch
    stop_at = total_steps if max_steps is None else min(max_steps, total_steps)
    state, step, row = _train(run, workdir, changes, stop_at, total_steps)
    if step >= total_steps and parallel.is_main_process():
        params = jax.device_get(state.params)
        figures.write_figures(
            workdir, run.model, params, run.data.figure_images, run.config, run.keys["figures"],
            run.data.test.labels,
        )  # fmt: skip
    return state, row


def _log(line: str) -> None:
    """Prints `line` on process 0 alone."""
    if parallel.is_main_process():
        print(line, flush=True)


def epoch_line(row: dict, epochs: int) -> str:
    """One progress line: losses, then speed, and compilation apart when the epoch compiled."""
    losses_text = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if "/" in k)
    compiling = f" + {row['compile_seconds']:.2f}s compiling" if row["compile_seconds"] else ""
    return (
        f"epoch {row['epoch']}/{epochs}  {losses_text}  "
        f"{row['samples_per_s']:,.0f} samples/s  {row['epoch_seconds']:.2f}s{compiling}"
    )


class _Checkpoints:
    """Saves train states, each only once the chunks trained since the last check proved finite."""

    def __init__(self, mngr, run: RunSetup):
        self.mngr, self.batches, self.lr = mngr, run.batches, run.config.opt.lr
        # (first step, metrics) of the chunks trained since the state was last checked
        self.unchecked = []

    def trained(self, first_step: int, metrics: dict) -> None:
        self.unchecked.append((first_step, metrics))

    def check_finite(self, state: TrainState, step: int) -> None:
        """Raises `finite_guard.TrainingDiverged` unless the chunks since the last check and
        `state` are finite. Called at a save or an epoch's end, where the host waits for the
        device anyway."""
        where = finite_guard.first_bad_step(state, self.unchecked, step)
        if where is not None:
            raise finite_guard.stop(where, self.mngr.latest_step(), self.mngr.directory, self.lr)
        self.unchecked.clear()

    def save(self, state: TrainState, step: int) -> None:
        self.check_finite(state, step)
        checkpoint.save(self.mngr, step, state, self.batches.checkpoint_items(restoring=False))


def _train(run: RunSetup, workdir: Path, changes: dict, stop_at: int, total_steps: int):
    """Trains from the workdir's last checkpoint (or the start) up to step `stop_at`, saving
    as it goes and at the end; returns the state, its step and the last epoch's row."""
    mngr = checkpoint.manager(workdir, run.config.train.keep_checkpoints, writer=True)
    checkpoints, events = _Checkpoints(mngr, run), None
    try:  # closed whatever happens: a stopped run leaves no writer holding its files
        state = _starting_state(run, mngr, workdir)
        step = int(state.step)
        checkpoint.truncate_metrics(workdir, step)
        events = progress.EventLog(workdir, step)
        if changes:
            checkpoint.record_changes(workdir, step, changes)
            _log(f"continuing from step {step} with {changes}")
        if step >= total_steps:
            _log(f"{workdir} is complete ({step} steps); rewriting its figures")
        state, step, row = _train_epochs(run, workdir, state, stop_at, checkpoints, events)
        if mngr.latest_step() != step:
            checkpoints.save(state, step)
    finally:
        mngr.close()
        run.batches.close()
        if events is not None:
            events.close()
    return state, step, row


def _starting_state(run: RunSetup, mngr, workdir: Path) -> TrainState:
    """The workdir's last checkpoint, else the initial state, with another run's parameters
    where `train.init_from` names one."""
    restored = restore_state(mngr, run.state, run.batches.checkpoint_items(restoring=True))
    if restored is not None:
        run.batches.check_restored(int(restored.step))
        _log(f"resumed {workdir} at step {int(restored.step)}")
        return restored
    if run.config.train.init_from:  # a fresh run that starts from another run's parameters
        params = transfer.take_params(run.state.params, run.config.train.init_from)
        return parallel.place(run.state.replace(params=params), run.state_sharding)
    return run.state


def _train_epochs(run: RunSetup, workdir: Path, state, stop_at: int, checkpoints, events):
    """Epoch after epoch up to step `stop_at`; each whole epoch is evaluated and logged."""
    shardings = (run.state_sharding, parallel.replicated(run.mesh))  # the state's, the metrics'
    train_chunk = run.clock.per_chunk_length(
        make_train_chunk(run.train_step, shardings, run.batches.take)
    )
    step, row = int(state.step), {}
    epoch_scores = _epoch_scores(run) if step < stop_at else None
    reported = 0.0  # compile seconds already in a row: the setup's go in the first
    collapse_warned = False  # once a run: a collapsed codebook rarely recovers
    while step < stop_at:
        epoch, offset = divmod(step, run.steps_per_epoch)
        start_time, clock_at_start = time.perf_counter(), run.clock.seconds
        state, step, metrics = _train_rest_of_epoch(
            run, train_chunk, state, step, stop_at, checkpoints
        )
        seconds = time.perf_counter() - start_time - (run.clock.seconds - clock_at_start)
        compile_seconds, reported = run.clock.seconds - reported, run.clock.seconds
        if step % run.steps_per_epoch:  # stopped inside an epoch: no epoch line to write
            break
        checkpoints.check_finite(state, step)
        scores, histograms = epoch_scores(state.params) if epoch_scores else ({}, {})
        row = {
            "epoch": epoch + 1,
            "step": step,
            **_means(run, state, metrics),
            **scores,
            "epoch_seconds": seconds,  # training alone: compiling is apart
            "compile_seconds": compile_seconds,
            "samples_per_s": (run.steps_per_epoch - offset) * run.config.train.batch_size / seconds,
        }
        checkpoint.append_metrics(workdir, row)
        events.write(row, histograms)
        _log(epoch_line(row, run.config.train.epochs))
        warning = None if collapse_warned else bottlenecks.collapse_warning(row, run.config)
        if warning:
            _log(warning)
            collapse_warned = True
    return state, step, row


def _epoch_scores(run: RunSetup) -> dictionary.EpochScores | CodebookUsage | None:
    """What each epoch's row adds beyond the means of the steps and the test set: a
    dictionary's firing and splice scores, a quantised code's use of its codebook."""
    data, capabilities = run.data, run.model.capabilities
    if capabilities.dictionary:
        return dictionary.EpochScores(run.model, run.config, data.figure_images, data.test.labels)
    if capabilities.indexed_codes:
        return CodebookUsage(run.model, data.figure_images)
    return None


def _train_rest_of_epoch(run: RunSetup, train_chunk, state, step: int, stop_at: int, checkpoints):
    """The rest of the epoch of `state`, at `step`, chunk by chunk, or up to step `stop_at`,
    saving every `train.save_every_steps`; returns the state, its step and the chunks'
    metrics, read once."""
    t, steps_per_epoch = run.config.train, run.steps_per_epoch
    epoch, offset = divmod(step, steps_per_epoch)
    bar = progress.epoch_bar(epoch, t.epochs, steps_per_epoch, offset)
    chunk_metrics = []
    # Chunks start at multiples of `chunk` within the epoch, whether or not the run resumed.
    for begin in range(offset, steps_per_epoch, t.chunk):
        end = min(begin - begin % t.chunk + t.chunk, steps_per_epoch)
        inputs = run.batches.chunk(epoch, begin, end)
        state, metrics = train_chunk(state, run.batches.dataset, inputs, run.keys["steps"])
        chunk_metrics.append(metrics)
        bar.update(end - begin)  # dispatched, not yet run: no host sync
        checkpoints.trained(step, metrics)
        previous, step = step, step + end - begin
        if step // t.save_every_steps > previous // t.save_every_steps:
            checkpoints.save(state, step)
        if step >= stop_at:
            break
    train_metrics = jax.device_get(chunk_metrics)
    bar.close()
    return state, step, train_metrics


def _means(run: RunSetup, state: TrainState, train_metrics: list[dict]) -> dict:
    """The epoch's training means and the test set's, as `train/NAME` and `test/NAME`."""
    train_means = {
        k: float(np.mean(np.concatenate([m[k] for m in train_metrics]))) for k in train_metrics[0]
    }
    test_means = run.evaluate(state.params, run.data.test_set, run.keys["evaluation"])
    return {
        **{f"train/{k}": v for k, v in train_means.items()},
        **{f"test/{k}": v for k, v in test_means.items()},
    }
