"""The XLA:CPU setting aejax runs with, applied where a run starts, never on import.

XLA:CPU hands reductions and elementwise fusions to YNNPACK by default, which evaluates a loss's
exp and log1p one element at a time: the MLP AE's step ran 5x slower, the VAE's 1.4x (README
"Benchmarks"). XLA reads `XLA_FLAGS` once, when JAX starts its backend (the first computation
or device query), not when jax is imported; so `aejax train` and `aejax.fit` set the flag before
that. A notebook that has already computed with JAX keeps the backend it started with, and
so runs without the flag (correct, only slower on CPU): call `aejax.fit` first, or set
`XLA_FLAGS` before starting Python. A user's own setting of this flag wins.
"""

import os

CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-reduce,-eltwise"


def set_cpu_flags() -> None:
    """Adds `CPU_FLAG` to `XLA_FLAGS` unless the environment already sets that option."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_experimental_ynn_fusion_type" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_FLAG}".strip()
