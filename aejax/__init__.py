"""aejax: the autoencoder family in JAX/Flax."""

import os

# XLA:CPU hands reductions and elementwise fusions to YNNPACK by default, which evaluates a
# loss's exp and log1p one element at a time: the MLP AE's step ran 5x slower, the VAE's 1.4x
# (README "Benchmarks"). Set before JAX starts its backend, so it takes
# effect when aejax is imported before the first computation; a user's own setting wins.
_XLA_CPU_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-reduce,-eltwise"
if "xla_cpu_experimental_ynn_fusion_type" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_CPU_FLAG}".strip()
