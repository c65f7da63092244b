"""The IWAE paper's schedule (experiments/iwae_protocol.py): its stages and learning rates, and
a budgeted run that stops at a stage boundary and continues when the budget grows."""

import importlib.util

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import EXPERIMENTS

from aejax.data import sources
from aejax.training import checkpoint
from aejax.training.optimizers import make_optimizer
from aejax.training.state import create_state

_spec = importlib.util.spec_from_file_location("iwae_protocol", EXPERIMENTS / "iwae_protocol.py")
protocol = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protocol)


def test_eight_stages_of_3_to_the_i_epochs_from_1e_3_to_1e_4():
    assert protocol.stage_ends() == [1, 4, 13, 40, 121, 364, 1093, 3280]
    np.testing.assert_allclose(
        [protocol.stage_lr(i) for i in range(8)],
        [1e-3 * 10 ** (-i / 7) for i in range(8)],
        rtol=1e-12,
    )


def test_the_optimizer_follows_the_stage_learning_rates():
    config = protocol.protocol_config("iwae", "mnist5k", steps_per_epoch=2)
    config.opt.name = "sgd"  # an sgd update is -lr * gradient: it shows the learning rate
    tx = make_optimizer(config.opt)
    params = jnp.zeros(())
    state = tx.init(params)
    rates = []
    for _ in range(27):  # stages 0 to 3 end at epochs 1, 4, 13: steps 2, 8, 26
        updates, state = tx.update(jnp.ones(()), state, params)
        rates.append(-float(updates))
    expected = [protocol.stage_lr(0)] * 2 + [protocol.stage_lr(1)] * 6 + [protocol.stage_lr(2)] * 18
    np.testing.assert_allclose(rates, expected + [protocol.stage_lr(3)], rtol=1e-5)


@pytest.mark.slow
def test_a_budget_stops_at_its_epoch_and_a_larger_one_continues(tmp_path):
    steps_per_epoch = 4000 // 400
    config = protocol.protocol_config("iwae", "mnist5k", steps_per_epoch)
    config.model.encoder_widths, config.model.latent_dim = (16,), 2
    config.train.batch_size, config.train.chunk = 400, 10
    ends = [epoch for epoch, _ in protocol.train_stages(config, tmp_path, 1, steps_per_epoch)]
    assert ends == [1] and [r["epoch"] for r in checkpoint.read_metrics(tmp_path)] == [1]
    stages = list(protocol.train_stages(config, tmp_path, 2, steps_per_epoch))  # cut at epoch 2
    assert [epoch for epoch, _ in stages] == [1, 2]
    assert [r["epoch"] for r in checkpoint.read_metrics(tmp_path)] == [1, 2]
    assert int(stages[-1][1].step) == 2 * steps_per_epoch


def test_a_curve_point_is_scored_once_and_only_from_its_own_epoch(tmp_path, monkeypatch):
    config = protocol.protocol_config("iwae", "mnist5k", steps_per_epoch=1)
    config.model.encoder_widths, config.model.latent_dim = (16,), 2
    state = create_state(config, sources.load("mnist5k", "train")[0][:10])  # step 0
    assert protocol.curve_point(config, tmp_path, 1, state, 1, 10, 20) is None  # not epoch 1's
    state = state.replace(step=state.step + 1)
    first = protocol.curve_point(config, tmp_path, 1, state, 1, 10, 20)
    assert (first["epoch"], first["images"], first["samples"]) == (1, 20, 10) and first["nll"] > 0
    monkeypatch.setattr(protocol.nll, "evaluate_test_set", None)  # a rescore would fail
    assert protocol.curve_point(config, tmp_path, 1, state, 1, 10, 20) == first
    protocol.plot_curve([first], protocol.REFERENCES["iwae"], tmp_path / "nll_curve.png")
    assert (tmp_path / "nll_curve.png").stat().st_size > 1000
