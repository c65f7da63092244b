"""`jit`: `jax.jit` with the XLA:CPU setting aejax's functions run fast with, per compilation.

XLA:CPU hands reduction, elementwise and convolution fusions to YNNPACK by default. In an
autoencoder's step that costs more than it saves: the loss's sum takes the BCE's exp and log1p
into a YNNPACK fusion, a broadcast constant is materialised for it each step, and the MLP AE's
step ran 3 to 4x slower, the VAE's 1.3x; the conv AE's kernel gradients, as YNNPACK
convolutions, trained it 15% slower than XLA's own (docs/benchmarks.md). aejax keeps YNNPACK
for single dots, where it helps, and turns the other fusion types off.

The setting is a compiler option of each compilation, not `XLA_FLAGS`, which XLA reads once
when the backend starts: so every function aejax compiles gets it whatever started the process
(`aejax train`, `aejax.fit`, `train_and_evaluate` from a script, a notebook that computed with
JAX first, the tests), and nothing else in the process changes. The option compiles the same
program as `XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=individual_dot` would (tested).
A user who sets that option in `XLA_FLAGS` keeps their own setting. It is a field of XLA's
DebugOptions that only XLA:CPU reads.
"""

import functools
import os

import jax

OPTION = "xla_cpu_experimental_ynn_fusion_type"
# The fusion types left to YNNPACK, as the repeated enum's names, comma-separated.
YNN_FUSION_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"


def compiler_options() -> dict[str, str] | None:
    """aejax's option, unless the user's `XLA_FLAGS` sets it."""
    if OPTION in os.environ.get("XLA_FLAGS", ""):
        return None
    return {OPTION: YNN_FUSION_TYPES}


def jit(fun=None, **kwargs):
    """`jax.jit(fun, **kwargs)` with `compiler_options()`; usable as `@jit` or `@jit(...)`.

    For functions called from the host: JAX refuses compiler options on a jit nested in
    another, so code meant to run inside a compiled function stays unjitted."""
    if fun is None:
        return functools.partial(jit, **kwargs)
    return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
