"""The convolutional autoencoders: shapes, parameter counts, the reshape forms, and learning."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import initial_test_metrics, load_config

from aejax import conv, models, train
from benchmarks import conv_layers


def conv_params(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out


CONV_ZOO = {  # config: (code shape, parameter count)
    "conv": ((4, 4, 8), conv_params(1, 16) + conv_params(16, 8) + 3 * conv_params(8, 8)
             + conv_params(8, 16) + conv_params(16, 1)),  # 4,385
    "conv_denoising": ((4, 4, 16), conv_params(1, 32) + conv_params(32, 32) + conv_params(32, 16)
                       + conv_params(16, 16) + conv_params(16, 32) + conv_params(32, 32)
                       + conv_params(32, 1)),  # 30,689
}


@pytest.mark.parametrize("name", CONV_ZOO)
def test_code_and_reconstruction_shapes_and_parameter_count(name):
    code_shape, parameters = CONV_ZOO[name]
    model = models.build(load_config(name).model)
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    params = model.init(jax.random.key(1), x)["params"]
    logits, aux = model.apply({"params": params}, x)
    assert logits.shape == x.shape and aux["code"].shape == (3, *code_shape)
    assert sum(p.size for p in jax.tree.leaves(params)) == parameters


def test_transposed_decoder_retraces_the_encoder_sides():
    """Stride-2 transposed convolutions give 4 -> 7 -> 14 -> 28, with Conv's parameter count."""
    model = models.build(load_config("conv_transpose").model)
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    params = model.init(jax.random.key(1), x)["params"]
    is_deconv = lambda module, _: isinstance(module, nn.ConvTranspose)
    (logits, aux), state = model.apply(
        {"params": params}, x, capture_intermediates=is_deconv, mutable=["intermediates"]
    )
    deconvs = state["intermediates"]["decoder"]
    sides = [deconvs[f"deconv{i}"]["__call__"][0].shape[1] for i in range(3)]
    assert sides == [7, 14, 28]
    assert logits.shape == x.shape and aux["code"].shape == (3, 4, 4, 8)
    assert sum(p.size for p in jax.tree.leaves(params)) == CONV_ZOO["conv"][1]
    assert set(params["decoder"]) == {"deconv0", "deconv1", "deconv2", "logits"}


def test_unknown_upsampling_is_refused():
    config = load_config("conv")
    config.model.upsampling = "bilinear"
    with pytest.raises(ValueError, match="unknown upsampling 'bilinear'"):
        models.build(config.model)


@pytest.mark.parametrize("side", [28, 14, 7])
def test_reshape_pooling_equals_flax_max_pool(side):
    x = jax.random.normal(jax.random.key(2), (2, side, side, 3))
    expected = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
    np.testing.assert_array_equal(conv.max_pool_2x2(x), expected)


@pytest.mark.parametrize("form", ["patches", "shifted"])
@pytest.mark.parametrize(
    "channels, features, padding",
    [(1, 5, "SAME"), (1, 5, "VALID"), (3, 1, "SAME"), (3, 1, "VALID"), (3, 5, "SAME")],
)
def test_benchmarked_conv_forms_equal_xla_convolution(form, channels, features, padding):
    """The matmul forms `benchmarks/conv_layers.py` times compute the same convolution."""
    x = jax.random.uniform(jax.random.key(4), (2, 9, 9, channels))
    kernel = jax.random.normal(jax.random.key(5), (3, 3, channels, features))
    ours, xla = conv_layers.FORMS[form], conv_layers.conv3x3_lax

    def loss(fn):
        return lambda x, kernel: jnp.sum(jnp.sin(fn(x, kernel, padding)))

    chex.assert_trees_all_close(
        jax.grad(loss(ours), (0, 1))(x, kernel), jax.grad(loss(xla), (0, 1))(x, kernel), atol=1e-5
    )
    np.testing.assert_allclose(ours(x, kernel, padding), xla(x, kernel, padding), atol=1e-5)


def test_broadcast_upsampling_equals_repeat():
    x = jax.random.normal(jax.random.key(3), (2, 4, 5, 3))
    np.testing.assert_array_equal(conv.upsample_2x(x), jnp.repeat(jnp.repeat(x, 2, 1), 2, 2))


@pytest.mark.parametrize(  # conv_transpose is at 0.66x its start after 3 epochs
    "name, epochs", [("conv", 3), ("conv_denoising", 3), ("conv_transpose", 6)]
)
def test_short_training_lowers_the_loss(tmp_path, monkeypatch, name, epochs):
    monkeypatch.setattr("aejax.plots.write_figures", lambda *args, **kwargs: None)
    config = load_config(name)
    config.train.epochs, config.train.save_every_steps = epochs, 1000
    if name == "conv_denoising":  # its 32-channel layers train at about 60 samples/s here
        config.model.encoder_features, config.model.decoder_features = (8, 8, 4), (4, 8, 8)
    start = initial_test_metrics(config)
    _, row = train.train_and_evaluate(config, tmp_path)
    assert row["test/loss"] < 0.6 * start["loss"], (start, row)


def test_encoder_and_decoder_layer_counts_must_match():
    config = load_config("conv")
    config.model.decoder_features = (8, 16)
    with pytest.raises(ValueError, match="as many decoder as encoder layers"):
        models.build(config.model)


@pytest.mark.parametrize(
    "shape, code_hw, conv_sides",
    [
        ((28, 28, 1), (4, 4), [4, 8, 14]),  # the pinned path: 4 -> 8 -> 16, VALID 14, then 28
        ((32, 32, 3), (4, 4), [4, 8, 16]),
        ((64, 64, 3), (8, 8), [8, 16, 32]),
        ((27, 33, 3), (4, 5), [4, 8, 14]),  # odd sides: 28 x 34 after the last doubling, cropped
    ],
)
@pytest.mark.parametrize("upsampling", ["nearest", "transpose"])
def test_conv_sides_follow_the_image_shape(shape, code_hw, conv_sides, upsampling):
    config = load_config("conv").model
    config.image_shape, config.upsampling = shape, upsampling
    model = models.build(config)
    x = jax.random.uniform(jax.random.key(0), (2, *shape))
    params = model.init(jax.random.key(1), x)["params"]
    is_conv = lambda module, _: isinstance(module, nn.Conv) and module.name.startswith("conv")
    (logits, aux), state = model.apply(
        {"params": params}, x, capture_intermediates=is_conv, mutable=["intermediates"]
    )
    assert logits.shape == x.shape and aux["code"].shape == (2, *code_hw, 8)
    if upsampling == "nearest":
        convs = state["intermediates"]["decoder"]
        assert [convs[f"conv{i}"]["__call__"][0].shape[1] for i in range(3)] == conv_sides
