"""Kills `aejax train` with SIGKILL at random moments, resumes it, and checks the end bit for bit.

    python -m benchmarks.kill_soak --kills 10 --seed 0 --out benchmarks/results/kill_soak.json

A reference run trains a tiny VAE on mnist5k without interruption. Then, in a fresh workdir,
the same command is started and killed at a moment drawn uniformly between the end of its
start-up and the reference's end, again and again until it completes; its final checkpoint
(parameters and optimiser state) and its metrics must equal the reference's exactly. A run that
completes starts a new cycle in a new workdir, until `--kills` kills have landed. Checkpoints
are saved every 2 steps, so many kills land inside a save (seen as a `*.orbax-checkpoint-tmp`
folder left behind).
"""

import argparse
import json
import random
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
TIMING_FIELDS = ("epoch_seconds", "samples_per_s")


def command(workdir: Path) -> list[str]:
    return [sys.executable, "-m", "aejax.main", "train", f"--workdir={workdir}", *OVERRIDES]


def start(workdir: Path) -> tuple[subprocess.Popen, float]:
    return subprocess.Popen(command(workdir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), time.perf_counter()


def final_state(workdir: Path) -> tuple[dict, list[dict]]:
    """The newest checkpoint as numpy arrays, and the metrics without their timings."""
    with ocp.CheckpointManager((workdir / "checkpoints").absolute()) as mngr:
        state = mngr.restore(mngr.latest_step(), args=ocp.args.StandardRestore())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return state, [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


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


def soak(kills: int, seed: int, root: Path) -> dict:
    rng = random.Random(seed)
    t_start = time.perf_counter()
    ready, total = reference(root / "reference")
    want = final_state(root / "reference")
    landed = mid_save = cycles = 0
    equal = []
    while landed < kills:
        workdir = root / f"cycle{cycles}"
        while True:
            proc, t0 = start(workdir)
            deadline = t0 + rng.uniform(ready, total)
            while proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.01)
            if proc.poll() is None and landed < kills:
                proc.kill()
                proc.communicate()
                landed += 1
                mid_save += any((workdir / "checkpoints").glob("*.orbax-checkpoint-tmp*"))
                continue
            _, err = proc.communicate()  # finished before its kill (or no kills left): let it end
            if proc.returncode:
                raise RuntimeError(f"a resumed run failed:\n{err}")
            break
        got = final_state(workdir)
        equal.append(bitwise_equal(got[0], want[0]) and got[1] == want[1])
        cycles += 1
        shutil.rmtree(workdir)
    return {
        "kills": landed,
        "kills_mid_save": mid_save,
        "cycles": cycles,
        "bitwise_equal": all(equal),
        "reference_seconds": round(total, 1),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "seed": seed,
        "command": " ".join(["aejax", "train", *OVERRIDES]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error(f"--kills must be at least 1, got {args.kills}")
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.kills, args.seed, Path(tmp))
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not result["bitwise_equal"]:
        sys.exit("a resumed run ended differently from the uninterrupted one")


if __name__ == "__main__":
    main()
