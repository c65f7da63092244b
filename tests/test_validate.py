"""Settings checked before any work: every shipped config is valid, and a value that cannot
work (a size below one, a rate out of range, a NaN), a `max_steps` below one or a workdir that
names a file is refused, naming the field and what it must be, before the workdir is made."""

import pytest
from conftest import load_config, tiny_config

from aejax import configs
from aejax.training import loop, validate


def _config(**overrides):
    """10 steps an epoch, 2 epochs, a checkpoint every 5 steps (one chunk)."""
    return tiny_config(
        "vae", train__batch_size=400, train__chunk=5, train__save_every_steps=5, **overrides
    )


def test_every_shipped_config_is_valid():
    for name in configs.names():
        validate.config(load_config(name))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model__latent_dim": 0}, r"model.latent_dim=0 must be a positive integer"),
        ({"model__encoder_widths": (32, -8)}, r"encoder_widths=\(32, -8\) must be a non-empty"),
        ({"opt__lr": float("nan")}, r"opt.lr=nan must be a positive finite number"),
        ({"train__epochs": 0}, r"train.epochs=0 must be a positive integer"),
        ({"loss__kl_weight": -1.0}, r"loss.kl_weight=-1.0 must be a finite number >= 0"),
        ({"data__max_pixels": 0}, r"data.max_pixels=0 must be a positive integer"),
    ],
)
def test_bad_values_are_named_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        loop.train_and_evaluate(_config(**overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_every_bad_field_is_named_in_one_message():
    config = _config(model__latent_dim=0, train__epochs=-4, opt__lr_decay=0.0)
    with pytest.raises(ValueError) as error:
        validate.config(config)
    message = str(error.value)
    assert message.startswith("invalid config: ")
    for named in ("model.latent_dim=0", "train.epochs=-4", "opt.lr_decay=0.0"):
        assert named in message
    assert message.endswith("override them, e.g. --config.FIELD=VALUE.")


@pytest.mark.parametrize(
    "name, field, value, message",
    [
        ("denoising", "factor", -0.5, r"loss.corruption.factor=-0.5 must be a finite number >= 0"),
        ("denoising_masking", "keep_prob", 1.5, r"keep_prob=1.5 must be a probability in \[0, 1\]"),
        ("denoising_salt_pepper", "fraction", -0.1, r"fraction=-0.1 must be a probability"),
    ],
)
def test_noise_levels_and_probabilities_out_of_range_are_named(name, field, value, message):
    config = load_config(name)
    config.loss.corruption[field] = value
    with pytest.raises(ValueError, match=message):
        validate.config(config)


def test_sparsity_target_and_penalty_weights_are_checked():
    config = load_config("sparse")
    config.loss.regularizers.kl_sparsity.target = 1.0
    config.loss.regularizers.kl_sparsity.weight = -0.2
    with pytest.raises(ValueError, match=r"target=1.0 must be a rate strictly .*weight=-0.2 must"):
        validate.config(config)


@pytest.mark.parametrize("max_steps", [0, -5])
def test_max_steps_below_one_is_refused(tmp_path, max_steps):
    with pytest.raises(ValueError, match=rf"max_steps={max_steps} must be at least 1"):
        loop.train_and_evaluate(_config(), tmp_path, max_steps=max_steps)


def test_workdir_naming_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    for workdir in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        with pytest.raises(ValueError, match=r"notes.txt is a file, not a directory"):
            loop.train_and_evaluate(_config(), workdir)
    validate.run_args(tmp_path / "new" / "run", None)  # a workdir yet to be made is fine
    validate.run_args(tmp_path, 1)
