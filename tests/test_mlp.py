"""The dense parts: an MLP's layers and activations, the encoder that flattens images, the
decoder that gives logits of the image's shape, the tied decoder that reuses the encoder's
kernels transposed, and activations and kernel initialisers chosen by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.data import sources
from aejax.models import autoencoder, bottlenecks, mlp


@pytest.fixture(scope="module")
def digits():
    """Eight real mnist5k test digits in [0, 1]."""
    return jnp.asarray(sources.load("mnist5k", "test")[0][:8])


def _dense(layer, h):
    return h @ layer["kernel"] + layer["bias"]


def test_the_encoder_flattens_and_applies_its_layers_in_order(digits):
    """Hidden layers take `activation`, the code layer `code_activation`."""
    encoder = mlp.MLPEncoder((16, 4), activation="tanh", code_activation="relu")
    params = encoder.init(jax.random.key(0), digits)["params"]
    code = encoder.apply({"params": params}, digits)
    layers = params["mlp"]
    want = jax.nn.relu(_dense(layers["dense1"], jnp.tanh(_dense(layers["dense0"], digits.reshape(8, -1)))))
    np.testing.assert_allclose(code, want, rtol=1e-5, atol=1e-6)
    assert code.shape == (8, 4) and np.all(code >= 0) and np.any(code > 0)
    kernels = encoder.apply({"params": params}, method="kernels")
    assert [k.shape for k in kernels] == [(784, 16), (16, 4)]  # input side first


def test_the_decoder_adds_an_output_layer_of_the_images_size(digits):
    """Logits are linear (any sign); the last layer has one unit per pixel and channel."""
    encoder = mlp.MLPEncoder((4,))
    code = encoder.apply(encoder.init(jax.random.key(0), digits), digits)
    decoder = mlp.MLPDecoder((16,), image_shape=(28, 28, 1), activation="relu")
    params = decoder.init(jax.random.key(1), code)["params"]
    logits = decoder.apply({"params": params}, code)
    layers = params["mlp"]
    assert layers["dense1"]["kernel"].shape == (16, 784)
    want = _dense(layers["dense1"], jax.nn.relu(_dense(layers["dense0"], code)))
    np.testing.assert_allclose(logits, want.reshape(8, 28, 28, 1), rtol=1e-5, atol=1e-6)
    assert np.any(logits < 0) and np.any(logits > 0)


def test_the_tied_decoder_mirrors_the_encoders_kernels_transposed(digits):
    """Its own parameters are biases only; its layers are the encoder's, last first,
    transposed, with the hidden activation between them and logits out."""
    encoder = mlp.MLPEncoder((16, 4), activation="relu", code_activation="linear")
    model = autoencoder.Autoencoder(
        encoder=encoder,
        decoder=mlp.TiedMLPDecoder(encoder, (28, 28, 1), activation="relu"),
        bottleneck=bottlenecks.Deterministic(),
    )
    params = model.init(jax.random.key(0), digits)["params"]
    assert set(params["decoder"]) == {"bias0", "bias1"}
    assert params["decoder"]["bias0"].shape == (784,) and params["decoder"]["bias1"].shape == (16,)
    params["decoder"] = {"bias0": jnp.full((784,), 0.1), "bias1": jnp.full((16,), -0.2)}
    logits, aux = model.apply({"params": params}, digits)
    w0, w1 = (params["encoder"]["mlp"][f"dense{i}"]["kernel"] for i in (0, 1))
    hidden = jax.nn.relu(aux["code"] @ w1.T - 0.2)
    np.testing.assert_allclose(logits, (hidden @ w0.T + 0.1).reshape(8, 28, 28, 1), rtol=1e-5,
                               atol=1e-5)  # fmt: skip


def test_initialisers_have_their_variances():
    """he_normal: variance 2 / fan_in; lecun_normal 1 / fan_in; glorot_uniform is bounded by
    sqrt(6 / (fan_in + fan_out))."""
    shape = (784, 300)
    he, lecun, glorot = (
        np.asarray(mlp.kernel_initializer(name)(jax.random.key(0), shape))
        for name in ("he_normal", "lecun_normal", "glorot_uniform")
    )
    np.testing.assert_allclose(he.var(), 2 / 784, rtol=0.02)
    np.testing.assert_allclose(lecun.var(), 1 / 784, rtol=0.02)
    bound = np.sqrt(6 / (784 + 300))
    assert np.abs(glorot).max() <= bound and np.abs(glorot).max() > 0.99 * bound


def test_activations_by_name_and_unknown_names_refused():
    h = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(mlp.activation("relu")(h), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(mlp.activation("linear")(h), h)
    np.testing.assert_allclose(mlp.activation("sigmoid")(h), 1 / (1 + np.exp(-np.asarray(h))),
                               rtol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        mlp.activation("swishy")
    with pytest.raises(ValueError, match=r"unknown kernel_init 'zeros'; choose one of \['glorot"):
        mlp.kernel_initializer("zeros")
