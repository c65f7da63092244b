"""Kills `aejax train` with SIGKILL at random moments, resumes it, and checks the end bit for bit.

    python -m benchmarks.kill_soak --kills 10 --seed 0 --out benchmarks/results/kill_soak.json

A reference run trains a tiny VAE on mnist5k without interruption. Then, in a fresh workdir,
the same command is started and, once it is up, killed at a moment drawn uniformly over the
time its remaining steps took the reference, again and again until it completes; its final
checkpoint (parameters and optimiser state, bit for bit) and its logged test metrics must
equal the reference's. A run that completes starts a new cycle in a new workdir, until
`--kills` kills have landed. Checkpoints are saved every 2 steps, and a share of the kills
(`--aim-saves`), once due, waits until a save is under way, so that kills inside a save are
tried too (seen as the `*.orbax-checkpoint-tmp` folder the killed save leaves).
"""

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

# A tiny VAE: 10 steps an epoch, 6 epochs, a checkpoint every 2 steps (each a compiled chunk).
OVERRIDES = (
    "--config.model.encoder_widths=(32,8)",
    "--config.model.latent_dim=4",
    "--config.train.batch_size=400",
    "--config.train.epochs=6",
    "--config.train.chunk=2",
    "--config.train.save_every_steps=2",
)
TOTAL_STEPS = 60
# Not compared: timings, and the train means of an epoch resumed inside, which average only the
# steps run since the resume (the steps before it were trained by the killed process).
UNCOMPARED = ("epoch_seconds", "compile_seconds", "samples_per_s", "train/")


def command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "aejax.cli", "train", f"--workdir={workdir}", *OVERRIDES]


def start(workdir: Path) -> tuple[subprocess.Popen, float]:
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(command(workdir), **pipes), time.perf_counter()


def final_state(workdir: Path) -> tuple[dict, list[dict]]:
    """The newest checkpoint as numpy arrays, and the metrics that must match exactly."""
    with ocp.CheckpointManager((workdir / "checkpoints").absolute()) as mngr:
        state = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return state, [{k: v for k, v in r.items() if not k.startswith(UNCOMPARED)} for r in rows]


def bitwise_equal(a, b) -> bool:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    return tree_a == tree_b and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))


def reference(workdir: Path) -> tuple[float, float]:
    """Runs uninterrupted; returns (seconds to its first output line, seconds in all)."""
    proc, t0 = start(workdir)
    proc.stdout.readline()  # "devices: ...": imports and backend are up
    ready = time.perf_counter() - t0
    _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the reference run failed:\n{err}")
    return ready, time.perf_counter() - t0


def steps_left(workdir: Path) -> float:
    """The share of the run's steps after its newest checkpoint."""
    steps = [int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()]
    return 1 - max(steps, default=0) / TOTAL_STEPS


def saving(workdir: Path) -> bool:
    """Whether a checkpoint is being written (or was, when its writer was killed)."""
    return any((workdir / "checkpoints").glob("*.orbax-checkpoint-tmp*"))


def soak(kills: int, seed: int, aim_saves: float, root: Path) -> dict:
    rng = random.Random(seed)
    t_start = time.perf_counter()
    ready, total = reference(root / "reference")
    want = final_state(root / "reference")
    landed = mid_save = cycles = 0
    equal = []
    while landed < kills:
        workdir = root / f"cycle{cycles}"
        while True:
            proc, _ = start(workdir)
            proc.stdout.readline()  # up: the kill falls in the time its remaining steps should take
            deadline = time.perf_counter() + rng.uniform(0, (total - ready) * steps_left(workdir))
            aimed = rng.random() < aim_saves
            while proc.poll() is None:
                late = time.perf_counter() >= deadline
                if late and not (aimed and not saving(workdir)):
                    break
                time.sleep(0.001 if late else 0.01)
            if proc.poll() is None and landed < kills:
                proc.kill()
                proc.communicate()
                landed += 1
                inside_save = saving(workdir)
                mid_save += inside_save
                where = "inside a save" if inside_save else "between saves"
                print(f"kill {landed}: {where}", file=sys.stderr, flush=True)
                continue
            _, err = proc.communicate()  # finished before its kill (or no kills left): let it end
            if proc.returncode:
                raise RuntimeError(f"a resumed run failed:\n{err}")
            break
        got = final_state(workdir)
        equal.append((bitwise_equal(got[0], want[0]), got[1] == want[1]))
        print(f"cycle {cycles}: state, metrics equal {equal[-1]}", file=sys.stderr, flush=True)
        cycles += 1
        shutil.rmtree(workdir)
    return {
        "kills": landed,
        "kills_mid_save": mid_save,
        "cycles": cycles,
        "bitwise_equal": all(state for state, _ in equal),
        "test_metrics_equal": all(metrics for _, metrics in equal),
        "reference_seconds": round(total, 1),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]), 1),
        "seed": seed,
        "aim_saves": aim_saves,
        "command": " ".join(["aejax", "train", *OVERRIDES]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument(
        "--aim-saves", type=float, default=0.5,
        help="the share of kills that, once due, wait for a save to be under way",
    )
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error(f"--kills must be at least 1, got {args.kills}")
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.kills, args.seed, args.aim_saves, Path(tmp))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not (result["bitwise_equal"] and result["test_metrics_equal"]):
        sys.exit("a resumed run ended differently from the uninterrupted one")


if __name__ == "__main__":
    main()
