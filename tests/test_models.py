"""Model shapes, parameter counts, and the pieces usable on their own."""

import jax
import numpy as np
import pytest
from conftest import load_config

from aejax import models
from aejax.models import mlp


def _init(config, batch=3):
    model = models.build(config.model)
    x = jax.random.uniform(jax.random.key(0), (batch, 28, 28, 1))
    params = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)["params"]
    return model, params, x


def _count(params) -> int:
    return sum(p.size for p in jax.tree.leaves(params))


def test_mlp_autoencoder_shapes_and_parameter_count():
    model, params, x = _init(load_config("mlp"))
    logits, aux = model.apply({"params": params}, x)
    assert logits.shape == x.shape and aux["code"].shape == (3, 32)
    assert np.all(aux["code"] >= 0)  # ReLU code
    assert _count(params) == (784 * 32 + 32) + (32 * 784 + 784)


def test_textbook_vae_shapes_and_parameter_count():
    model, params, x = _init(load_config("vae"))
    logits, aux = model.apply({"params": params}, x, rngs={"noise": jax.random.key(3)})
    assert logits.shape == x.shape
    assert aux["mu"].shape == aux["logvar"].shape == aux["z"].shape == (3, 20)
    encoder = (784 * 500 + 500) + (500 * 500 + 500) + 2 * (500 * 20 + 20)
    decoder = (20 * 500 + 500) + (500 * 500 + 500) + (500 * 784 + 784)
    assert _count(params) == encoder + decoder


def test_encode_and_decode_work_on_their_own():
    model, params, x = _init(load_config("vae"))
    encoding = model.apply({"params": params}, x, method="encode")
    mu, logvar = encoding.code, encoding.logvar
    images = model.apply({"params": params}, mu, method="decode")
    assert mu.shape == logvar.shape == (3, 20) and images.shape == x.shape


def test_reparameterised_sample_has_the_posterior_moments():
    model, params, x = _init(load_config("vae"), batch=1)
    x = np.repeat(x, 20_000, axis=0)
    _, aux = model.apply({"params": params}, x, rngs={"noise": jax.random.key(4)})
    np.testing.assert_allclose(aux["z"].mean(0), aux["mu"][0], atol=0.03)
    np.testing.assert_allclose(aux["z"].var(0), np.exp(aux["logvar"][0]), rtol=0.05)


def test_a_conv_code_takes_the_configs_code_activation():
    """ReLU by default; a linear last layer (vqvae's) gives codes of both signs, the same
    parameters otherwise."""
    config = load_config("conv")
    model, params, x = _init(config)
    relu_code = model.apply({"params": params}, x, method="encode").code
    config.model.code_activation = "linear"
    linear = models.build(config.model)
    linear_code = linear.apply({"params": params}, x, method="encode").code
    assert np.all(relu_code >= 0) and np.any(linear_code < 0)
    np.testing.assert_array_equal(relu_code[linear_code > 0], linear_code[linear_code > 0])
    assert load_config("vqvae").model.code_activation == "linear"


def test_unknown_model_and_activation_are_refused():
    config = load_config("mlp")
    config.model.name = "transformer"
    with pytest.raises(ValueError, match="unknown model 'transformer'.*registered models"):
        models.build(config.model)
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        mlp.activation("swishy")


def test_kernel_init_is_chosen_by_the_config():
    config = load_config("stacked")  # he_normal: variance 2 / fan_in
    _, params, _ = _init(config)
    kernel = params["encoder"]["mlp"]["dense0"]["kernel"]
    np.testing.assert_allclose(np.std(kernel), np.sqrt(2 / 784), rtol=0.02)
    config.model.kernel_init = "orthogonal"
    with pytest.raises(ValueError, match="unknown kernel_init 'orthogonal'.*he_normal"):
        models.build(config.model)


def test_conv_vae_shapes_and_parameter_count():
    model, params, x = _init(load_config("conv_vae"))
    logits, aux = model.apply({"params": params}, x, rngs={"noise": jax.random.key(3)})
    assert logits.shape == x.shape and aux["z"].shape == (3, 16)

    def conv(c_in, c_out):
        return 9 * c_in * c_out + c_out

    encoder = conv(1, 16) + conv(16, 32) + conv(32, 32) + 2 * (512 * 16 + 16)  # 4x4x32 = 512
    decoder = (16 * 512 + 512) + conv(32, 32) + conv(32, 32) + conv(32, 16) + conv(16, 1)
    assert _count(params) == encoder + decoder


def test_output_bias_starts_at_the_logits_of_the_pixel_means():
    config = load_config("iwae")
    _, params, _ = _init(config)
    images = jax.random.uniform(jax.random.key(5), (50, 28, 28, 1)).at[:, 0, 0].set(0.0)
    params = models.init_from_data(config.model, params, images)
    bias = params["decoder"]["mlp"]["dense2"]["bias"]  # 50-200-200-784: the third layer
    means = np.clip(images.mean(0).ravel(), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(jax.nn.sigmoid(bias), means, rtol=1e-4)
    assert np.isfinite(bias[0])  # an always-black pixel gets a finite bias
    config.model.name = "conv_vae"
    with pytest.raises(ValueError, match="needs an MLP decoder"):
        models.init_from_data(config.model, {"decoder": {"conv": {}}}, images)
