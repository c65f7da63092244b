"""Greedy layer-wise pretraining: a phase trains its pair of layers and leaves the rest alone."""

import jax
import numpy as np
import pytest
from conftest import initial_test_metrics, load_config

from aejax import layerwise, models, plots, pretrain, train, transfer


@pytest.fixture
def sdae(tiny, monkeypatch):
    """The SDAE at most 16 wide (784-16-16-10-2), one epoch (40 steps, one compile) a phase."""
    monkeypatch.setattr(plots, "write_figures", lambda *args, **kwargs: None)  # test_train's job
    config = tiny("sdae", train__chunk=40, train__save_every_steps=10_000, train__epochs=1)
    config.pretrain.layer_epochs = 1
    return config


def _by_name(params) -> dict:
    return {
        "/".join(k.key for k in path): np.asarray(v)
        for path, v in jax.tree.leaves_with_path(params)
    }


def test_phase_two_trains_its_pair_leaves_the_rest_bitwise_unchanged_then_all_fine_tune(
    sdae, tmp_path
):
    sdae.model.encoder_widths = (16, 2)  # 784-16-2-16-784: two phases, then fine-tuning
    _, row = pretrain.pretrain_and_finetune(sdae, tmp_path)
    phase1, phase2, finetuned = (
        _by_name(transfer.load_params(tmp_path / d)) for d in ("layer0", "layer1", "finetune")
    )
    trained = ("encoder/mlp/dense1/", "decoder/mlp/dense0/")  # encoder layer 1 and its mirror
    for name in phase1:
        if name.startswith(trained):
            assert not np.array_equal(phase1[name], phase2[name]), name
        else:
            assert phase1[name].tobytes() == phase2[name].tobytes(), name
        assert not np.array_equal(phase2[name], finetuned[name]), name  # fine-tuning moves all
    assert row["test/loss"] < initial_test_metrics(sdae)["loss"]

    # Phase two's loss does reach the outer pair's input layer: the optimiser holds it still.
    phase2_loss = layerwise.make_layer_loss_fn(
        models.build(sdae.model), pretrain.phase_config(sdae, 1, "").loss
    )
    x = np.full((8, 28, 28, 1), 0.5, np.float32)
    grads = jax.grad(lambda p: phase2_loss(p, x, jax.random.key(0), True)[0])(
        transfer.load_params(tmp_path / "layer0")
    )
    assert np.abs(grads["encoder"]["mlp"]["dense0"]["kernel"]).max() > 0


@pytest.mark.parametrize(
    "change, message",
    [
        ("corruption", "assumes inputs in \\[0, 1\\].*'masking'"),
        ("layer", "loss.layer=4: the encoder has layers 0 to 3"),
        ("model", "needs an MLP autoencoder"),
    ],
)
def test_phases_that_cannot_work_are_refused(sdae, change, message):
    config = pretrain.phase_config(sdae, 1, "")
    if change == "corruption":
        config.loss.corruption = {"name": "gaussian", "factor": 0.5, "clip": True, "at_eval": False}
    if change == "layer":
        config.loss.layer = 4
    if change == "model":
        config.model = load_config("conv").model
    with pytest.raises(ValueError, match=message):
        layerwise.make_layer_loss_fn(models.build(config.model), config.loss)


def test_a_trainable_path_that_names_no_parameter_is_refused(sdae):
    sdae.opt.trainable = ("encoder/mlp/dense9",)
    with pytest.raises(ValueError, match="'encoder/mlp/dense9', which is no parameter group"):
        train.create_state(sdae, np.zeros((1, 28, 28, 1), np.float32))


def test_init_from_a_run_of_another_architecture_is_refused(sdae, tmp_path):
    train.train_and_evaluate(pretrain.phase_config(sdae, 0, ""), tmp_path / "wide")
    narrow = pretrain.phase_config(sdae, 0, str(tmp_path / "wide"))
    narrow.model.encoder_widths = (8, 8, 8, 2)
    with pytest.raises(ValueError, match="group 'decoder' of the run .* has shapes"):
        train.train_and_evaluate(narrow, tmp_path / "narrow")
