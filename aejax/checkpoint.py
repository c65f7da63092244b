"""The run directory: its config, its Orbax checkpoints and its metrics log.

A workdir belongs to one config. Starting a run where a checkpoint exists resumes it, and
since every random draw is a function of (seed, step), the resumed run continues exactly.
Orbax writes each checkpoint to a temporary directory and renames it when complete, so a
killed run never leaves a half-written checkpoint behind. In a multi-process run every process
saves and restores through Orbax, which coordinates them; the other files are written by
process 0 alone.
"""

import json
from pathlib import Path

import ml_collections
import orbax.checkpoint as ocp

from aejax import parallel

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def claim_workdir(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Records `config` in `workdir`, refusing a workdir that was made by another config."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / CONFIG_FILE
    ours = json.loads(config.to_json())
    if path.exists():
        theirs = json.loads(path.read_text())
        if theirs != ours:
            a, b = _flatten(theirs), _flatten(ours)
            diff = sorted(k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>"))
            changes = ", ".join(f"{k}: {a.get(k, '<absent>')} -> {b.get(k, '<absent>')}" for k in diff)
            raise ValueError(
                f"{workdir} holds a run with a different config ({changes}). Resuming would mix two "
                "experiments: pass a new --workdir, or rerun with the config saved in "
                f"{path}."
            )
        return
    if not parallel.is_main_process():
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ours, indent=2, sort_keys=True))
    tmp.replace(path)


def manager(workdir: Path, keep: int) -> ocp.CheckpointManager:
    """Checkpoints under `workdir/checkpoints`, the newest `keep` kept; saves are synchronous.

    Synchronous saves let the train step donate its state buffers right after a save.
    """
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False)
    return ocp.CheckpointManager((workdir / "checkpoints").absolute(), options=options)


def _args(state_args: ocp.args.CheckpointArgs, extra: dict | None) -> ocp.args.CheckpointArgs:
    """The state alone, or with `extra` items (a data pipeline's position) as one Composite."""
    return ocp.args.Composite(state=state_args, **extra) if extra else state_args


def save(mngr: ocp.CheckpointManager, step: int, state, extra: dict | None = None) -> None:
    """Saves `state` at `step`, with `extra` (name -> Orbax save args) in the same checkpoint."""
    mngr.save(step, args=_args(ocp.args.StandardSave(state), extra), force=True)


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, extra: dict | None = None):
    """The newest checkpoint restored into the structure of `abstract_state`, or None.

    `extra` (name -> Orbax restore args) restores the items `save` wrote beside the state.
    """
    step = mngr.latest_step()
    if step is None:
        return None
    restored = mngr.restore(step, args=_args(ocp.args.StandardRestore(abstract_state), extra))
    return restored.state if extra else restored


def restore_plain(mngr: ocp.CheckpointManager, step: int) -> dict:
    """The train state saved at `step` as a tree of plain arrays, without knowing its structure;
    from a streamed run's checkpoint too, where it sits beside the data pipeline's state."""
    if (mngr.directory / str(step) / "state").is_dir():
        return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
    return mngr.restore(step, args=ocp.args.StandardRestore())


def read_metrics(workdir: Path) -> list[dict]:
    path = workdir / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def truncate_metrics(workdir: Path, step: int) -> None:
    """Drops log lines written after `step`: a resumed run will write them again."""
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
