"""The run directory: its config, its Orbax checkpoints and its metrics log.

A workdir belongs to one config. Starting a run where a checkpoint exists resumes it, and
since every random draw is a function of (seed, step), the resumed run continues exactly.
Orbax writes each checkpoint to a temporary directory and renames it when complete, so a
killed run never leaves a half-written checkpoint behind; the temporary directory it leaves is
removed when the run resumes. Damage from outside (a full disk, files overwritten, a log line
cut short) is named and recovered from where it can be: an unreadable newest checkpoint gives
way to the previous one, a torn log line is dropped. In a multi-process run every process
saves and restores through Orbax, which coordinates them; the other files are written by
process 0 alone.
"""

import errno
import functools
import gc
import json
import logging
import shutil
import warnings
from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp

from aejax.configs import fields
from aejax.models import factory
from aejax.training import parallel

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHANGES_FILE = "config_changes.jsonl"  # fields changed on resume, and from which step
DATA_FILE = "data.json"  # each split's shape, dtype and content hash (`claim_workdir`)
DATA_CHANGE = "data"  # what `resume_changes` names to continue a run on other data
DAMAGED_DIR = "damaged_checkpoints"  # where unreadable checkpoints are moved
# Fields a resumed run may change (`resume_changes`): none alters what a checkpoint holds or
# which batches a step draws, so the saved state still fits and the run still continues.
RESUMABLE_FIELDS = (
    "opt.lr",
    "opt.lr_decay",
    "train.epochs",
    "train.chunk",
    "train.eval_batch_size",
    "train.save_every_steps",
    "train.keep_checkpoints",
)
# Fields that say how a run is laid out over its devices, not what it computes: like the device
# count, they may change whenever a run resumes, and are recorded anew.
LAYOUT_FIELDS = ("train.model_parallel",)


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested dict as {"group.field": value}."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_config(path: Path, records: str = "which config made this run") -> dict:
    """The config (or other JSON record) a workdir holds, or a ValueError saying the file is
    damaged and what to do."""
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        saved = e
    if not isinstance(saved, dict):
        raise ValueError(
            f"{path} is damaged ({saved}): it records {records}. If you are sure the run was made "
            f"as you are running it now, delete {path} and rerun (it is written again); "
            "otherwise pass a new --workdir."
        )
    return saved


_ABSENT = "<absent>"


def _added_since(changes: dict) -> set[str]:
    """The changed fields that the saved config lacks and ours holds at their default
    (`aejax.configs.fields.base()`'s, matched by group and name, so a classifier's
    `model.autoencoder.encoder` is `model.encoder`): fields aejax added after that run was made,
    whose defaults keep what it did (the structure fields of factory.PRESETS, bottleneck weights)."""
    defaults = flatten(json.loads(fields.base().to_json()))
    added = set()
    for key, (old, new) in changes.items():
        group, *_, name = key.split(".")
        default = defaults.get(key, defaults.get(f"{group}.{name}", _ABSENT))
        if old == _ABSENT and default != _ABSENT and new == default:
            added.add(key)
    return added


# The fields that choose a model's parts (`factory.structure`): model.name gives the defaults.
_STRUCTURE_FIELDS = ("name", "encoder", "bottleneck", "decoder", "upsampling")


def _same_structure(changes: dict, saved: dict, ours: dict) -> set[str]:
    """The changed structure fields of model groups that still build the same encoder,
    bottleneck and decoder: a config that now names a preset of its own (vqvae's runs recorded
    model.name "conv" and bottleneck "vq")."""
    same = set()
    for group in {k.rsplit(".", 1)[0] for k in changes if k.startswith("model")}:
        fields = {f"{group}.{f}" for f in _STRUCTURE_FIELDS} & set(changes)
        if not fields:
            continue
        path = group.split(".")
        trees = [functools.reduce(lambda t, k: (t or {}).get(k), path, tree) for tree in (saved, ours)]
        try:
            old, new = (factory.structure(ml_collections.ConfigDict(t)) for t in trees)
        except (KeyError, TypeError, ValueError, AttributeError):  # no model group, or a broken one
            continue
        if old == new:
            same |= fields
    return same


def _resume_hint(names) -> str:
    """How to pass `resume_changes`, on the command line and to `aejax.fit`."""
    return f"--resume_changes={','.join(names)} (in Python: resume_changes={tuple(names)!r})"


def _describe(split: dict) -> str:
    labels = " with labels" if split["labels"] else ""
    return f"{'x'.join(map(str, split['shape']))} {split['dtype']}{labels}, sha256 {split['sha256'][:12]}"


def _data_change(workdir: Path, fingerprint: dict | None, resume_changes) -> dict:
    """{DATA_CHANGE: (old, new)} when the data differs from what `workdir` trained on and
    `resume_changes` allows it; {} when it is the same or unknown (a workdir made before data
    was recorded); else a ValueError naming the splits that differ and the fixes."""
    path = workdir / DATA_FILE
    if fingerprint is None or not path.exists():
        return {}
    saved = read_config(path, "which data this run trained on")
    if saved == fingerprint:
        return {}
    if DATA_CHANGE in resume_changes:
        return {DATA_CHANGE: (saved, fingerprint)}
    differ = "; ".join(
        f"{split}: {_describe(saved[split])} -> {_describe(fingerprint[split])}"
        for split in sorted(fingerprint)
        if saved.get(split) != fingerprint[split]
    )
    raise ValueError(
        f"{workdir} was trained on other data ({differ}). Resuming would mix two datasets: pass "
        f"a new --workdir (workdir= in Python), or to continue this run on the new data: "
        f"{_resume_hint([DATA_CHANGE])}"
    )


def _write_json(path: Path, value: dict) -> None:
    """`value` written to `path` atomically by process 0, unless the file already holds it."""
    text = json.dumps(value, indent=2, sort_keys=True)
    if parallel.is_main_process() and not (path.exists() and path.read_text(errors="replace") == text):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def claim_workdir(
    workdir: Path,
    config: ml_collections.ConfigDict,
    resume_changes: tuple[str, ...] = (),
    fingerprint: dict | None = None,
) -> dict:
    """Records `config` and the data's `fingerprint` ({split: `Dataset.fingerprint()`}) in
    `workdir`, refusing a workdir that was made by another config or trained on other data.
    A refusal writes nothing.

    Fields named in `resume_changes` (from RESUMABLE_FIELDS, or DATA_CHANGE for other data) may
    differ: the new values are recorded and returned as {field: (old, new)}, for
    `record_changes` once the step is known. A workdir made before aejax added a field resumes
    with that field at its default; one laid out otherwise (`LAYOUT_FIELDS`), one whose model is
    now named by another preset of the same parts, or one which recorded a `data.name` the run
    did not read (beside a `data.path`), resumes as unchanged and is recorded anew; one made
    before the data was recorded resumes on any data, which is recorded from then on.
    """
    allowed = (*RESUMABLE_FIELDS, DATA_CHANGE)
    not_resumable = sorted(set(resume_changes) - set(allowed))
    if not_resumable:
        raise ValueError(
            f"resume_changes names {not_resumable}, which a resumed run cannot change: the saved "
            f"state or the batches would no longer match. What can: {list(allowed)}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / CONFIG_FILE
    ours = json.loads(config.to_json())
    changes = {}
    if path.exists():
        saved = read_config(path)
        a, b = flatten(saved), flatten(ours)
        fields = sorted(a.keys() | b.keys())
        pairs = {k: (a.get(k, _ABSENT), b.get(k, _ABSENT)) for k in fields}
        changes = {k: (old, new) for k, (old, new) in pairs.items() if old != new}
        unread = {"data.name"} & set(changes) if a.get("data.path") and b.get("data.path") else set()
        layout = set(LAYOUT_FIELDS) & set(changes)
        for key in _added_since(changes) | _same_structure(changes, saved, ours) | unread | layout:
            del changes[key]  # recorded below
        if not set(changes) <= set(resume_changes):
            listed = ", ".join(f"{k}: {old} -> {new}" for k, (old, new) in changes.items())
            resumable = set(changes) <= set(RESUMABLE_FIELDS)
            hint = f" To continue this run with them: {_resume_hint(changes)}"
            raise ValueError(
                f"{workdir} holds a run with a different config ({listed}). Resuming would mix two "
                "experiments: pass a new --workdir (workdir= in Python), or rerun with the config "
                f"saved in {path}.{hint if resumable else ''}"
            )
        changes.update(_data_change(workdir, fingerprint, resume_changes))
    _write_json(path, ours)
    if fingerprint is not None:
        _write_json(workdir / DATA_FILE, fingerprint)
    return changes


def record_changes(workdir: Path, step: int, changes: dict) -> None:
    """Appends the fields a resumed run changed, and the step it changed them at, to the log."""
    if parallel.is_main_process():
        with open(workdir / CHANGES_FILE, "a") as f:
            f.write(json.dumps({"step": step, "changes": changes}) + "\n")


def manager(workdir: Path, keep: int, *, writer: bool = False) -> ocp.CheckpointManager:
    """Checkpoints under `workdir/checkpoints`, the newest `keep` kept; saves are synchronous.

    Synchronous saves let the train step donate its state buffers right after a save. The
    `writer` (the run itself) removes the temporary directories of saves cut short (a killed
    run) when it opens them; a reader must not, or it would delete a save in progress.
    """
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, enable_async_checkpointing=False, cleanup_tmp_directories=writer
    )
    return ocp.CheckpointManager((workdir / "checkpoints").absolute(), options=options)


def _disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from, says the disk is full (Orbax's writers
    report it as a ValueError carrying the OS error code)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(error) or "os_error_code='28'" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


class _DiskFullReports(logging.Filter):
    """Drops Orbax's own reports of a full disk (a traceback from each writer thread): `save`
    raises one error that says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (_disk_full(error) or "No space left on device" in record.getMessage())


def _disk_full_error(mngr: ocp.CheckpointManager, step: int, what: str) -> OSError:
    mngr.reload()
    kept = [s for s in mngr.all_steps() if s != step]
    previous = f"checkpoint {max(kept)} is intact" if kept else "no earlier checkpoint exists"
    return OSError(
        errno.ENOSPC,
        f"the disk is full: checkpoint {step} could not be written to {mngr.directory} ({what}; "
        f"{previous}). Free some space and rerun the same command to resume.",
    )


def _args(state_args: ocp.args.CheckpointArgs, extra: dict | None) -> ocp.args.CheckpointArgs:
    """The state alone, or with `extra` items (a data pipeline's position) as one Composite."""
    return ocp.args.Composite(state=state_args, **extra) if extra else state_args


def save(mngr: ocp.CheckpointManager, step: int, state, extra: dict | None = None) -> None:
    """Saves `state` as checkpoint `step`, with `extra` (name -> Orbax save args) in the same
    checkpoint; older checkpoints are left as they were.

    A disk without room for it raises one OSError(ENOSPC) saying so: before writing when the
    free space is known to be too little, else when a write fails, after removing the
    half-written checkpoint.
    """
    directory = Path(mngr.directory)
    needed = sum(x.nbytes for x in jax.tree.leaves(state))
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise _disk_full_error(mngr, step, f"it needs {needed:,} bytes, {free:,} are free")
    orbax_log, quiet = logging.getLogger("absl"), _DiskFullReports()
    orbax_log.addFilter(quiet)
    try:
        mngr.save(step, args=_args(ocp.args.StandardSave(state), extra), force=True)
    except Exception as e:
        if not _disk_full(e):
            raise
        gc.collect()  # finalises Orbax's abandoned writes now, not as noise at interpreter exit
        for tmp in directory.glob("*.orbax-checkpoint-tmp*"):
            shutil.rmtree(tmp, ignore_errors=True)
        raise _disk_full_error(mngr, step, "its partial files were removed") from None
    finally:
        orbax_log.removeFilter(quiet)


def _move_aside(mngr: ocp.CheckpointManager, step: int) -> Path:
    directory = Path(mngr.directory)
    target = directory.parent / DAMAGED_DIR / str(step)
    if parallel.is_main_process():
        target.parent.mkdir(exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(directory / str(step), target)
    return target


def _restore(mngr: ocp.CheckpointManager, step: int, abstract_state, extra: dict | None):
    state_args = ocp.args.StandardRestore(abstract_state)
    if not extra and (Path(mngr.directory) / str(step) / "state").is_dir():
        # A streamed run's checkpoint, read without its pipeline (`aejax.load_run`).
        return mngr.restore(step, args=ocp.args.Composite(state=state_args)).state
    restored = mngr.restore(step, args=_args(state_args, extra))
    return restored.state if extra else restored


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, extra: dict | None = None):
    """The newest readable checkpoint, restored into the structure of `abstract_state`, or None;
    `extra` (name -> Orbax restore args) restores the items `save` wrote beside the state.

    A newer checkpoint that cannot be read is moved to `WORKDIR/damaged_checkpoints` with a
    warning, so the run continues from the one before. If none can be read, nothing is moved
    (a changed model or code fails on every checkpoint alike) and a ValueError says why.
    """
    failures = []
    for step in sorted(mngr.all_steps(), reverse=True):
        try:
            state = _restore(mngr, step, abstract_state, extra)
        except Exception as e:  # Orbax and TensorStore raise many types for damaged files
            failures.append((step, f"{type(e).__name__}: {(str(e) or '-').splitlines()[0][:300]}"))
            continue
        for bad, reason in failures:
            target = _move_aside(mngr, bad)
            warnings.warn(
                f"checkpoint {bad} in {mngr.directory} cannot be read ({reason}); it was moved to "
                f"{target} and the run resumes from checkpoint {step}",
                stacklevel=2,
            )
        if failures:
            mngr.reload()
        return state
    if failures:
        reasons = "; ".join(f"checkpoint {s}: {r}" for s, r in failures)
        raise ValueError(
            f"no checkpoint in {mngr.directory} can be read ({reasons}). If the model or its code "
            "changed since they were written, rerun with the config and code that wrote them; if "
            "they are damaged, move that folder aside (the run then starts afresh) or pass a new "
            "--workdir."
        )
    return None


def restore_plain(mngr: ocp.CheckpointManager, step: int) -> dict:
    """The train state saved at `step` as a tree of plain arrays, without knowing its structure;
    from a streamed run's checkpoint too, where it sits beside the data pipeline's state."""
    if (mngr.directory / str(step) / "state").is_dir():
        return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
    return mngr.restore(step, args=ocp.args.StandardRestore())


def read_metrics(workdir: Path) -> list[dict]:
    """The log's rows; a damaged line (a write cut short) is dropped with a warning."""
    path = workdir / METRICS_FILE
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not (isinstance(row, dict) and isinstance(row.get("step"), int)):
            warnings.warn(
                f"{path} line {number} is damaged and was dropped ({line[:80]!r}); a resumed run "
                "writes the lines after its checkpoint again",
                stacklevel=2,
            )
            continue
        rows.append(row)
    return rows


def truncate_metrics(workdir: Path, step: int) -> None:
    """Drops log lines written after `step`, and damaged ones: a resumed run writes them again."""
    if not parallel.is_main_process():
        return
    rows = [r for r in read_metrics(workdir) if r["step"] <= step]
    path = workdir / METRICS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def append_metrics(workdir: Path, row: dict) -> None:
    if not parallel.is_main_process():
        return
    with open(workdir / METRICS_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")
