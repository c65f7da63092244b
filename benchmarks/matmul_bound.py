"""How fast a model's training step could be if only its matmuls took time.

    python benchmarks/matmul_bound.py

Runs the forward, input-gradient and kernel-gradient matmul of every dense layer of the mlp and
vae configs at their batch sizes, and nothing else, as aejax runs its steps: one compiled loop of
steps, so no call's dispatch is counted. Its samples/s is what no implementation of that step
can beat with this backend's matmuls. Then one large matmul's GFLOP/s, what the backend reaches
when the matmul is all there is.
"""

import time

import jax
import jax.numpy as jnp

from aejax import compiled

# (config, batch, dense layer shapes (in, out)) as built by aejax.models for the shipped configs.
STEPS = [
    ("mlp", 200, [(784, 32), (32, 784)]),
    ("vae", 150, [(784, 500), (500, 500), (500, 40), (20, 500), (500, 500), (500, 784)]),
]


def best_seconds(fn, *args, runs: int = 5, calls: int = 100) -> float:
    """Seconds per call of `fn(*args)`, jitted: the best of `runs`, which other load inflates least."""
    fn = compiled.jit(fn)
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def matmul_steps(batch: int, layers: list[tuple[int, int]], steps: int):
    """`steps` steps of the layers' three matmuls each as one function, and its operands.

    Each product feeds the next step's operands through one elementwise update of its own size,
    so that XLA can neither drop a product nor hoist it out of the loop.
    """

    def step(operands_L, _):
        updated = []
        for x_BxI, w_IxO, dy_BxO in operands_L:
            y_BxO, dx_BxI, dw_IxO = x_BxI @ w_IxO, dy_BxO @ w_IxO.T, x_BxI.T @ dy_BxO
            updated.append((x_BxI + 1e-30 * dx_BxI, w_IxO + 1e-30 * dw_IxO, dy_BxO + 1e-30 * y_BxO))
        return updated, None

    operands = [(jnp.ones((batch, i)), jnp.ones((i, o)), jnp.ones((batch, o))) for i, o in layers]
    return lambda ops: jax.lax.scan(step, ops, length=steps)[0], operands


def step_seconds(batch: int, layers: list[tuple[int, int]], steps: int = 100) -> float:
    """Seconds per step of the layers' matmuls alone (`matmul_steps`), best of 5 loops."""
    loop, operands = matmul_steps(batch, layers, steps)
    return best_seconds(loop, operands, calls=1) / steps


def matmul_gflops(n: int = 2048) -> float:
    """GFLOP/s of one n x n by n x n fp32 matmul, best of 5: what this backend's matmuls reach
    on this machine when nothing but the matmul runs, the yardstick for a step's GFLOP/s."""
    a = jnp.ones((n, n), jnp.float32)
    return 2 * n**3 / best_seconds(lambda x, y: x @ y, a, a, calls=5) / 1e9


def main() -> None:
    print(
        "| config | batch | matmul seconds per step | GFLOP/s of those matmuls | samples/s bound |"
    )
    print("|---|---|---|---|---|")
    for name, batch, layers in STEPS:
        seconds = step_seconds(batch, layers)
        flop = sum(3 * 2 * batch * d_in * d_out for d_in, d_out in layers)
        print(
            f"| {name} | {batch} | {seconds * 1e3:.2f} ms | {flop / seconds / 1e9:.0f} | "
            f"{batch / seconds:,.0f} |"
        )
    print(f"\nOne 2048 x 2048 fp32 matmul: {matmul_gflops():.0f} GFLOP/s")


if __name__ == "__main__":
    main()
