"""Where a train step's time goes, layer by layer, as XLA:CPU runs it in aejax.

    python -m benchmarks.step_profile mlp vae conv --dataset fashion_mnist

Compiles a shipped config's train step as the loop does (`aejax.compiled.jit`), runs it under
JAX's profiler and sums the time of each compiled operation (a fusion, a dot, a convolution),
charged to the layer its HLO metadata names (`encoder/mlp/dense0`, `decoder/...`, the loss,
the optimiser's update) and the kind of work: a YNNPACK dot or convolution, an XLA dot or convolution, a reduction, or
elementwise work. Times are per step, summed over the threads that ran them, so with two
threads working at once the total exceeds the step's wall time; the shares are what to read.
"""

import argparse
import collections
import re
import tempfile
from pathlib import Path

import jax
from jax.profiler import ProfileData

from aejax import compiled
from aejax.training import parallel, setup
from benchmarks import measure

STEPS = 50


def operation_sources(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Each top-level operation of the compiled step -> (layer, kind), from its HLO line."""
    found = {}
    for line in hlo_text.splitlines():
        match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*? (fusion|dot|convolution|reduce|[\w\-]+)\(", line)
        if not match or "op_name=" not in line:
            continue
        name, op = match.groups()
        op_name = re.search(r'op_name="([^"]+)"', line).group(1)
        parts = op_name.split("/")[1:-1]
        layer = "/".join(p for p in parts if not p.startswith(("jvp", "transpose", "jit(")))
        if not layer:  # no module: the loss's arithmetic, or the optimiser's update
            layer = "loss" if any(p.startswith(("jvp", "transpose")) for p in parts) else "optimiser update"
        if '"__ynn_fusion"' in line:
            kind = "ynn " + op_name.rsplit("/", 1)[-1]
        elif op in ("dot", "convolution", "reduce"):
            kind = op
        else:
            kind = "elementwise"
        found[name] = (layer, kind)
    return found


def profile(name: str, dataset: str) -> list[tuple[str, str, float]]:
    """(layer, kind, microseconds per step) of config `name`, the costliest first."""
    config = measure.load_config(name, {"data.name": dataset, "data.stream": "never"})
    run = setup.setup(config, mesh=parallel.make_mesh(1))
    step = compiled.jit(run.train_step, donate_argnums=0)
    x = jax.device_put(run.data.train.float_images()[: run.config.train.batch_size])
    state, rng = run.state, run.keys["steps"]
    origins = operation_sources(step.lower(state, x, rng).compile().as_text())
    for _ in range(5):  # warm-up: compiled, allocated
        state, _ = step(state, x, rng)
    jax.block_until_ready(state)
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(STEPS):
                state, _ = step(state, x, rng)
            jax.block_until_ready(state)
        trace = ProfileData.from_file(str(next(Path(folder).rglob("*.xplane.pb"))))
    totals = collections.Counter()
    for plane in trace.planes:
        for line in plane.lines:
            for event in line.events:
                if event.name in origins:
                    totals[origins[event.name]] += event.duration_ns / 1e3 / STEPS
    return [(layer, kind, us) for (layer, kind), us in totals.most_common()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", choices=measure.model_names())
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--top", type=int, default=12, help="rows per model")
    args = parser.parse_args(argv)
    for name in args.models:
        rows = profile(name, args.dataset)
        total = sum(us for *_, us in rows)
        print(f"\n{name}: {total:,.0f} us of operations per step (all threads)\n")
        print("| layer | kind | us per step | share |\n|---|---|---|---|")
        for layer, kind, us in rows[: args.top]:
            print(f"| {layer} | {kind} | {us:,.0f} | {us / total:.0%} |")


if __name__ == "__main__":
    main()
