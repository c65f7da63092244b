"""Greedy layer-wise pretraining: a phase trains its pair of layers and leaves the rest alone."""

import jax
import numpy as np
import pytest
from conftest import initial_test_metrics, load_config

from aejax.data import sources
from aejax.evaluation import figures
from aejax.models import factory
from aejax.objectives import layerwise
from aejax.training import checkpoint, loop, pretrain, transfer
from aejax.training.state import create_state


@pytest.fixture
def sdae(tiny, monkeypatch):
    """The SDAE at most 16 wide (784-16-16-10-2), one epoch (40 steps, one compile) a phase."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)  # test_loop's job
    config = tiny("sdae", train__chunk=40, train__save_every_steps=10_000, train__epochs=1)
    config.pretrain.layer_epochs = 1
    return config


def _by_name(params) -> dict:
    return {
        "/".join(k.key for k in path): np.asarray(v)
        for path, v in jax.tree.leaves_with_path(params)
    }


@pytest.mark.slow
def test_phase_two_trains_its_pair_leaves_the_rest_bitwise_unchanged_then_all_fine_tune(
    sdae, tmp_path
):
    sdae.model.encoder_widths = (16, 2)  # 784-16-2-16-784: two phases, then fine-tuning
    _, row = pretrain.pretrain_and_finetune(sdae, tmp_path)
    # encoder layer 1 and its mirror; phase two's loss reaches the outer layer all the same
    _assert_phase_two_moves_only(tmp_path, ("encoder/mlp/dense1/", "decoder/mlp/dense0/"))
    assert row["test/loss"] < initial_test_metrics(sdae)["loss"]
    x = np.full((8, 28, 28, 1), 0.5, np.float32)
    grads = _phase_two_gradient(sdae, tmp_path, x)
    assert np.abs(grads["encoder"]["mlp"]["dense0"]["kernel"]).max() > 0


def _assert_phase_two_moves_only(workdir, trained: tuple[str, ...]):
    """Phase two (`layer1`) changes the parameters named `trained` and leaves every other one
    bitwise as phase one left it; fine-tuning then moves all of them."""
    phase1, phase2, finetuned = (
        _by_name(transfer.load_params(workdir / d)) for d in ("layer0", "layer1", "finetune")
    )
    assert set(phase1) == set(phase2) == set(finetuned)
    for name in phase1:
        if name.startswith(trained):
            assert not np.array_equal(phase1[name], phase2[name]), name
        else:
            assert phase1[name].tobytes() == phase2[name].tobytes(), name
        assert not np.array_equal(phase2[name], finetuned[name]), name


def _phase_two_gradient(config, workdir, x):
    """The gradient of phase two's loss at phase one's parameters: nonzero on a frozen layer
    shows that the optimiser, not the loss, holds that layer still."""
    loss = layerwise.make_layer_loss_fn(
        factory.build(config.model), pretrain.phase_config(config, 1, "").loss
    )
    params = transfer.load_params(workdir / "layer0")
    return jax.grad(lambda p: loss(p, x, jax.random.key(0), True)[0])(params)


@pytest.fixture
def tied_greedy(tiny, monkeypatch):
    """Geron's tied stacked AE (Hands-On ML, ch. 15) at 784-16-8-16-784, one epoch (26 steps,
    one compile) a phase."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    config = tiny("tied_mse_greedy", train__chunk=26, train__save_every_steps=10_000)
    config.pretrain.layer_epochs = 1
    return config


def test_tied_phases_train_their_pair_and_leave_the_rest_bitwise_unchanged(tied_greedy, tmp_path):
    pretrain.pretrain_and_finetune(tied_greedy, tmp_path)
    phase1, phase2 = (_by_name(transfer.load_params(tmp_path / d)) for d in ("layer0", "layer1"))
    assert not any(name.startswith("decoder/mlp") for name in phase1)  # no decoder kernel at all
    trained = ("encoder/mlp/dense1/", "decoder/bias1")  # the inner tied kernel and its biases
    for name in phase1:
        if name.startswith(trained):
            assert not np.array_equal(phase1[name], phase2[name]), name
        else:
            assert phase1[name].tobytes() == phase2[name].tobytes(), name
    for layer in (0, 1):  # each phase's rows carry the L2 term, and its loss includes it
        row = checkpoint.read_metrics(tmp_path / f"layer{layer}")[-1]
        weight = tied_greedy.loss.regularizers.l2.weight
        assert row["test/l2"] > 0
        np.testing.assert_allclose(row["test/loss"], row["test/recon"] + weight * row["test/l2"])


def test_unclipped_gaussian_noise_may_corrupt_hidden_codes(sdae):
    config = pretrain.phase_config(sdae, 1, "")
    config.loss.corruption = {"name": "gaussian", "factor": 1.0, "clip": False, "at_eval": False}
    layerwise.make_layer_loss_fn(factory.build(config.model), config.loss)  # not refused


@pytest.mark.parametrize(
    "change, message",
    [
        ("corruption", "assumes inputs in \\[0, 1\\].*'masking'"),
        ("layer", "loss.layer=4: the encoder has layers 0 to 3"),
        ("model", "needs an MLP autoencoder .* or a conv one"),
        ("nearest", "the 'nearest' decoder's maps do not .* set model.decoder"),
        ("channels", "decoder_features must start with the encoder's channels reversed, \\[32, 1"),
    ],
)
def test_phases_that_cannot_work_are_refused(sdae, change, message):
    config = pretrain.phase_config(sdae, 1, "")
    if change == "corruption":
        config.loss.corruption = {"name": "gaussian", "factor": 0.5, "clip": True, "at_eval": False}
    if change == "layer":
        config.loss.layer = 4
    if change == "model":
        config.model = load_config("vae").model
    if change == "nearest":
        config.model = load_config("conv_greedy").model
        config.model.decoder = "nearest"
    if change == "channels":
        config.model = load_config("conv_greedy").model
        config.model.decoder_features = (16, 32, 16)
    with pytest.raises(ValueError, match=message):
        layerwise.make_layer_loss_fn(factory.build(config.model), config.loss)


def test_a_trainable_path_that_names_no_parameter_is_refused(sdae):
    sdae.opt.trainable = ("encoder/mlp/dense9",)
    with pytest.raises(ValueError, match="'encoder/mlp/dense9', which is no parameter group"):
        create_state(sdae, np.zeros((1, 28, 28, 1), np.float32))


def test_init_from_a_run_of_another_architecture_is_refused(sdae, tmp_path):
    loop.train_and_evaluate(pretrain.phase_config(sdae, 0, ""), tmp_path / "wide")
    narrow = pretrain.phase_config(sdae, 0, str(tmp_path / "wide"))
    narrow.model.encoder_widths = (8, 8, 8, 2)
    with pytest.raises(ValueError, match="group 'decoder' of the run .* has shapes"):
        loop.train_and_evaluate(narrow, tmp_path / "narrow")


@pytest.fixture
def conv_greedy(tiny, monkeypatch):
    """The greedy conv AE at conv16-pool-conv8-pool (7x7x8) and back, one epoch a phase."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    config = tiny("conv_greedy", model__encoder_features=(16, 8), model__decoder_features=(16, 16))
    config.pretrain.layer_epochs = 2
    config.train.epochs, config.train.batch_size, config.train.chunk = 2, 50, 1
    return config


@pytest.mark.slow
def test_conv_phases_train_their_pair_leave_the_rest_bitwise_unchanged_and_lower_the_loss(
    conv_greedy, tmp_path
):
    (x, y), (x_test, y_test) = (sources.load("mnist5k", split) for split in sources.SPLITS)
    splits = {"train_split": (x[:400], y[:400]), "test_split": (x_test[:100], y_test[:100])}
    pretrain.pretrain_and_finetune(conv_greedy, tmp_path, **splits)
    _assert_phase_two_moves_only(tmp_path, ("encoder/conv1/", "decoder/deconv0/"))
    grads = _phase_two_gradient(conv_greedy, tmp_path, x[:8] / 255)
    assert np.abs(grads["encoder"]["conv0"]["kernel"]).max() > 0
    for run in ("layer0", "layer1", "finetune"):  # 16 steps each: pixels' BCE, maps' MSE, BCE
        rows = checkpoint.read_metrics(tmp_path / run)
        for split in ("train", "test"):
            first, last = rows[0][f"{split}/loss"], rows[-1][f"{split}/loss"]
            assert last < 0.98 * first, (run, split, rows)
