"""aejax.compiled: the XLA:CPU option reaches every compilation, whatever started the backend."""

import os
import re
import subprocess
import sys

import pytest

from aejax import compiled

FLAG = "--xla_cpu_experimental_ynn_fusion_type=individual_dot"

# Prints the optimised HLO of a shipped config's train chunk at batch 8, compiled by `JIT`
# (aejax's or jax's own) after a first computation has started the backend, as in a notebook.
SCRIPT = """
import sys
import jax, jax.numpy as jnp
from aejax import compiled, configs, data
from aejax.models import factory
from aejax.objectives.registry import make_objective
from aejax.training.state import create_state
from aejax.training.step import make_train_step
jnp.ones(3).sum().block_until_ready()
JIT = {"aejax": compiled.jit, "jax": jax.jit}[sys.argv[2]]
cfg = configs.load(sys.argv[1]).copy_and_resolve_references()
images = data.load("mnist5k", "test")[0][:64]
cfg.model = factory.fit_to_data(cfg.model, images.shape[1:], 10, len(images))
step = make_train_step(make_objective(factory.build(cfg.model), cfg.loss))
state = create_state(cfg, images)
print(JIT(step).lower(state, images[:8], jax.random.key(0)).compile().as_text())
"""


def optimised_hlo(config: str, jit: str, xla_flags: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, config, jit], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    hlo = out.stdout[out.stdout.index("HloModule") :]  # after anything data preparation printed
    return re.sub(r"metadata=\{[^}]*\}", "", hlo)  # source lines differ by caller


@pytest.mark.parametrize("config", ["mlp", "conv"])
@pytest.mark.slow
def test_the_option_compiles_what_the_flag_compiles_after_the_backend_started(config):
    """An MLP (dots, the BCE's sum) and a conv AE (convolutions): aejax's compilation
    in a process that computed first equals jax's under the flag set before the start, and
    differs from jax's default, so the option is what made it."""
    with_option = optimised_hlo(config, "aejax", None)
    assert with_option == optimised_hlo(config, "jax", FLAG)
    assert with_option != optimised_hlo(config, "jax", None)


def test_a_users_own_setting_of_the_option_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=-dot")
    assert compiled.compiler_options() is None
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert compiled.compiler_options() == {compiled.OPTION: compiled.YNN_FUSION_TYPES}
