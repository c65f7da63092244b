"""Runs that build on runs: a finished run's parameters read back, taken into a model that has
their groups (the same model continued, or a classifier wrapping the autoencoder), and an
optimiser that trains the named parts only, every other parameter left exactly as it was."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import load_config

from aejax.configs import fields
from aejax.data import sources
from aejax.models import factory
from aejax.objectives import autoencoding
from aejax.training import transfer
from aejax.training.optimizers import freeze_all_but


@pytest.fixture(scope="module")
def stacked():
    """The `stacked` AE narrowed to 784-16-8-16-784 at its initial parameters, and the gradient
    of its loss on 32 real mnist5k digits."""
    config = load_config("stacked")
    config.model.encoder_widths = (16, 8)
    model = factory.build(config.model)
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:32])
    params = jax.jit(model.init)(jax.random.key(0), x)["params"]
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    grads = jax.jit(jax.grad(lambda p: loss_fn(p, x, jax.random.key(1), True)[0]))(params)
    return params, grads


def _names(tree) -> dict:
    return {"/".join(k.key for k in path): v for path, v in jax.tree.leaves_with_path(tree)}


def test_only_the_trainable_paths_are_updated(stacked):
    """SGD at rate 1 moves a trainable parameter by minus its gradient; a frozen one by 0."""
    params, grads = stacked
    tx = freeze_all_but(optax.sgd(1.0), ("encoder/mlp/dense1", "decoder/mlp/dense0/bias"))
    updates, _ = tx.update(grads, tx.init(params), params)
    trained = {"encoder/mlp/dense1/kernel", "encoder/mlp/dense1/bias", "decoder/mlp/dense0/bias"}
    gradients = _names(grads)
    for name, update in _names(updates).items():
        if name in trained:
            np.testing.assert_array_equal(update, -gradients[name])
            assert np.any(update), name
        else:
            assert not np.any(update), name


def test_frozen_parameters_have_no_optimiser_state(stacked):
    """Adam keeps two moments of each trainable parameter and none of a frozen one."""
    params, _ = stacked
    state = freeze_all_but(optax.adam(1e-3), ("encoder/mlp/dense0",)).init(params)
    sizes = [leaf.size for leaf in jax.tree.leaves(state) if getattr(leaf, "ndim", 0) > 0]
    assert sum(sizes) == 2 * (784 * 16 + 16)


def test_a_trainable_path_matches_whole_names_only(stacked):
    """"encoder/mlp/dense" is no group (the groups are dense0 and dense1), and is refused, not
    taken as a prefix of both."""
    params, _ = stacked
    with pytest.raises(ValueError, match=r"opt.trainable names 'encoder/mlp/dense', which is no"):
        freeze_all_but(optax.sgd(1.0), ("encoder/mlp/dense",)).init(params)


def test_a_runs_parameters_are_read_back_as_saved(linear_2d_run, tmp_path):
    config, workdir, params = linear_2d_run
    chex.assert_trees_all_equal(transfer.load_params(workdir), params)
    (tmp_path / "checkpoints").mkdir()  # a run that never saved
    for missing in (tmp_path / "never_trained", tmp_path):
        with pytest.raises(ValueError, match=r"has no checkpoint; train that run first"):
            transfer.load_params(missing)


def test_the_same_model_takes_every_group_of_the_run(linear_2d_run):
    config, workdir, params = linear_2d_run
    model = factory.build(config.model)
    fresh = model.init(jax.random.key(5), jnp.zeros((1, 28, 28, 1)))["params"]
    chex.assert_trees_all_equal(transfer.take_params(fresh, workdir), params)


def test_a_classifier_takes_the_encoder_and_keeps_its_head(linear_2d_run):
    config, workdir, params = linear_2d_run
    classifier = fields.classifier_config(config)
    model = factory.build(factory.fit_to_data(classifier.model, (28, 28, 1), 10))
    fresh = model.init(jax.random.key(5), jnp.zeros((1, 28, 28, 1)))["params"]
    taken = transfer.take_params(fresh, workdir)
    assert set(taken["autoencoder"]) == {"encoder"}  # a code classifier has no decoder
    chex.assert_trees_all_equal(taken["autoencoder"]["encoder"], params["encoder"])
    chex.assert_trees_all_equal(taken["head"], fresh["head"])


def test_a_run_of_another_architecture_is_refused(linear_2d_run):
    config, workdir, _ = linear_2d_run
    config = config.copy_and_resolve_references()
    config.model.encoder_widths = (3,)
    fresh = factory.build(config.model).init(jax.random.key(5), jnp.zeros((1, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"group 'decoder' of the run .* has shapes .*different"):
        transfer.take_params(fresh["params"], workdir)
    with pytest.raises(ValueError, match=r"none of which this model has \(\['prior'\]\)"):
        transfer.take_params({"prior": {"w": jnp.zeros(2)}}, workdir)
