"""How fast a model's training step could be if only its matmuls took time.

    python benchmarks/matmul_bound.py

Times the forward, input-gradient and weight-gradient matmul of every dense layer of the mlp
and vae configs at their batch sizes, each compiled alone (best of 5 runs), and sums them:
the samples/s no implementation of that step can beat with this backend's matmuls.
"""

import time

import jax
import jax.numpy as jnp

import aejax  # noqa: F401  (sets aejax's XLA:CPU flags before the backend starts)

# (config, batch, dense layer shapes (in, out)) as built by aejax.models for the shipped configs.
STEPS = [
    ("mlp", 200, [(784, 32), (32, 784)]),
    ("vae", 150, [(784, 500), (500, 500), (500, 40), (20, 500), (500, 500), (500, 784)]),
]


def best_seconds(fn, *args, runs: int = 5, calls: int = 100) -> float:
    """Seconds per call of `fn(*args)`, jitted: the best of `runs`, which other load inflates least."""
    fn = jax.jit(fn)
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    print("| config | batch | matmul seconds per step | GFLOP/s of those matmuls | samples/s bound |")
    print("|---|---|---|---|---|")
    for name, batch, layers in STEPS:
        seconds = flop = 0.0
        for d_in, d_out in layers:
            x, w, dy = jnp.ones((batch, d_in)), jnp.ones((d_in, d_out)), jnp.ones((batch, d_out))
            seconds += best_seconds(lambda a, b: a @ b, x, w)  # forward
            seconds += best_seconds(lambda a, b: a @ b.T, dy, w)  # gradient to the input
            seconds += best_seconds(lambda a, b: a.T @ b, x, dy)  # gradient to the kernel
            flop += 3 * 2 * batch * d_in * d_out
        print(f"| {name} | {batch} | {seconds * 1e3:.2f} ms | {flop / seconds / 1e9:.0f} | "
              f"{batch / seconds:,.0f} |")


if __name__ == "__main__":
    main()
