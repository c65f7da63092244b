"""The optimiser of a config's `opt` group: its schedule, its parts, what it leaves frozen."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import load_config

from aejax.training import optimizers


def _opt(**fields) -> ml_collections.ConfigDict:
    cfg = load_config("mlp").opt
    with cfg.unlocked():
        cfg.update(fields)
    return cfg


def _updates(tx, params, grads, steps: int) -> list:
    """The updates `tx` makes in `steps` steps of the same gradients."""
    opt_state, updates = tx.init(params), []
    for _ in range(steps):
        update, opt_state = tx.update(grads, opt_state, params)
        updates.append(update)
    return updates


def test_an_unknown_optimizer_is_refused_with_the_choices():
    choices = r"choose one of \['adam', 'adamw', 'sgd'\]"
    with pytest.raises(ValueError, match=f"unknown optimizer 'lion'; {choices}"):
        optimizers.make_optimizer(_opt(name="lion"))


def test_the_rate_is_multiplied_by_the_decay_at_each_boundary():
    tx = optimizers.make_optimizer(_opt(name="sgd", lr=1.0, lr_boundaries=(2, 3), lr_decay=0.1))
    params, grads = {"w": jnp.zeros(())}, {"w": jnp.ones(())}
    steps = [float(u["w"]) for u in _updates(tx, params, grads, 4)]
    np.testing.assert_allclose(steps, [-1.0, -1.0, -0.1, -0.01], rtol=1e-6)


def test_a_part_and_an_assigned_group_get_optimisers_of_their_own():
    cfg = _opt(name="sgd", lr=0.1)
    with cfg.unlocked():
        cfg.parts.critic = ml_collections.ConfigDict({"name": "sgd", "lr": 0.3})
    tx = optimizers.make_optimizer(cfg, assigned=("codebook",))
    params = {group: jnp.zeros(2) for group in ("encoder", "critic", "codebook")}
    grads = {group: jnp.ones(2) for group in params}
    (update,) = _updates(tx, params, grads, 1)
    assert {g: float(u[0]) for g, u in update.items()} == pytest.approx(
        {"encoder": -0.1, "critic": -0.3, "codebook": -1.0}
    )


def test_each_parameter_is_labelled_by_its_top_level_group():
    params = {"encoder": {"w": 0, "b": 0}, "critic": {"w": 0}}
    assert optimizers.part_labels(("critic",), params) == {
        "encoder": {"w": "main", "b": "main"},
        "critic": {"w": "critic"},
    }
    groups = r"its groups are \['critic', 'encoder'\]"
    with pytest.raises(ValueError, match=rf"opt.parts names \['head'\].*{groups}"):
        optimizers.part_labels(("head",), params)


def test_parameters_outside_the_trainable_paths_are_not_updated():
    tx = optimizers.make_optimizer(_opt(name="sgd", lr=1.0, trainable=("decoder",)))
    params = {"encoder": {"w": jnp.zeros(2)}, "decoder": {"w": jnp.zeros(2)}}
    grads = optax.tree_utils.tree_ones_like(params)
    (update,) = _updates(tx, params, grads, 1)
    np.testing.assert_array_equal(update["encoder"]["w"], 0.0)
    np.testing.assert_array_equal(update["decoder"]["w"], -1.0)
