"""Divergence: a run whose losses or parameters stop being finite stops, names the step where it
went wrong, saves nothing non-finite, and says how to go on with a lower learning rate."""

import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import tiny_config

from aejax.training import checkpoint, finite_guard, loop


def _config(**overrides):
    """10 steps an epoch, 2 epochs, a checkpoint every 5 steps (one chunk)."""
    return tiny_config(
        "vae", train__batch_size=400, train__chunk=5, train__save_every_steps=5, **overrides
    )


def _saved_states(workdir):
    with checkpoint.manager(workdir, 3) as mngr:
        return {s: mngr.restore(s, args=ocp.args.StandardRestore()) for s in mngr.all_steps()}


@pytest.mark.slow
def test_diverged_run_saves_nothing_non_finite_and_resumes_with_a_lower_lr(tmp_path):
    # From step 7 on the learning rate is multiplied by 1e6: the run diverges within a few steps.
    config = _config(opt__lr_boundaries=(6,), opt__lr_decay=1e6)
    named = r"diverged at step (7|8|9|10) .*checkpoint, step 5 .*--resume_changes=opt.lr"
    with pytest.raises(finite_guard.TrainingDiverged, match=named):
        loop.train_and_evaluate(config, tmp_path)
    saved = _saved_states(tmp_path)
    assert sorted(saved) == [5]
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(saved))
    assert checkpoint.read_metrics(tmp_path) == []

    config.opt.lr = 1e-9  # the same jump now lands on 1e-3
    with pytest.raises(ValueError, match=r"opt.lr: 0.001 -> 1e-09.*--resume_changes=opt.lr"):
        loop.train_and_evaluate(config, tmp_path)
    state, row = loop.train_and_evaluate(config, tmp_path, resume_changes=("opt.lr",))
    assert int(state.step) == 20 and np.isfinite(row["test/loss"])
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state.params))
    log = (tmp_path / checkpoint.CHANGES_FILE).read_text().splitlines()
    changes = [json.loads(line) for line in log]
    assert changes == [{"step": 5, "changes": {"opt.lr": [0.001, 1e-9]}}]


# The trees below are built by hand: a non-finite number is placed where each check must find it.


def test_all_finite_looks_at_every_floating_point_leaf():
    tree = {"w": jnp.ones((3, 2)), "count": jnp.array(7), "nested": [jnp.zeros(4)]}
    assert bool(finite_guard.all_finite(tree))
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        broken = {**tree, "nested": [jnp.zeros(4).at[2].set(bad)]}
        assert not bool(finite_guard.all_finite(broken)), bad


def _state(params):
    return SimpleNamespace(params=params, opt_state=())


def test_the_first_bad_step_is_named_from_the_chunks_losses():
    """Chunks of 3 steps from steps 10 and 13: the loss of the second chunk's middle step is
    NaN, which is update 15 (steps count from 1)."""
    chunks = [
        (10, {"loss": np.array([1.0, 0.9, 0.8]), "kl": np.array([0.1, 0.1, 0.1])}),
        (13, {"loss": np.array([0.7, np.nan, np.inf]), "kl": np.array([0.1, 0.2, 0.3])}),
    ]
    finite = _state({"w": jnp.ones(3)})
    assert finite_guard.first_bad_step(finite, chunks, 16) == "at step 15 (kl 0.2, loss nan)"
    assert finite_guard.first_bad_step(finite, chunks[:1], 13) is None


def test_parameters_gone_non_finite_with_finite_losses_are_named_by_the_steps_since_the_check():
    broken = _state({"w": jnp.array([1.0, jnp.nan])})
    chunks = [(10, {"loss": np.array([1.0, 0.9])})]
    where = finite_guard.first_bad_step(broken, chunks, 12)
    assert where == "between steps 11 and 12 (its parameters are no longer finite)"


def test_the_error_says_what_was_kept_and_how_to_go_on():
    error = finite_guard.stop("at step 15 (loss nan)", 10, "/runs/a/checkpoints", lr=1e-3)
    assert isinstance(error, FloatingPointError)
    message = str(error)
    assert message.startswith("training diverged at step 15 (loss nan). The last finite ")
    assert "step 10 in /runs/a/checkpoints, is kept (nothing after it was saved)" in message
    assert "--config.opt.lr=0.0001 --resume_changes=opt.lr" in message
    fresh = str(finite_guard.stop("at step 2 (loss inf)", None, "/runs/a/checkpoints", lr=0.1))
    assert "No checkpoint had been saved yet. To go on from the start" in fresh
    assert "--config.opt.lr=0.01" in fresh
