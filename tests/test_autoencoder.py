"""`Autoencoder`: an encoder, a bottleneck and a decoder joined. Encoding and decoding on their
own, the bottleneck's parameters beside the encoder's and decoder's, a learned output variance,
several posterior samples per image, and VQ codes decoded from their indices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.data import sources
from aejax.models import autoencoder, bottlenecks, conv, factory, mlp


@pytest.fixture(scope="module")
def digits():
    """Six real mnist5k test digits in [0, 1]."""
    return jnp.asarray(sources.load("mnist5k", "test")[0][:6])


def _mlp_autoencoder(bottleneck, **kwargs) -> autoencoder.Autoencoder:
    return autoencoder.Autoencoder(
        encoder=mlp.MLPEncoder((16,)), decoder=mlp.MLPDecoder((16,)), bottleneck=bottleneck,
        **kwargs,
    )  # fmt: skip


def _init(model, x):
    return model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)["params"]


def test_encode_and_decode_work_on_their_own():
    """Shapes only: traced, not run."""
    config = load_config("vae")
    model = factory.build(config.model)
    x = jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32)
    params = jax.eval_shape(functools.partial(_init, model), x)
    encoding = jax.eval_shape(lambda p, x: model.apply({"params": p}, x, method="encode"), params, x)
    mu, logvar = encoding.code, encoding.logvar
    images = jax.eval_shape(lambda p, z: model.apply({"params": p}, z, method="decode"), params, mu)
    assert mu.shape == logvar.shape == (3, 20) and images.shape == x.shape


def test_the_bottlenecks_parameters_sit_beside_the_encoders_and_decoders(digits):
    """The gaussian's heads are top-level groups, as in a VAE written as one module; the
    output is decode(bottleneck(encode(x)))."""
    model = _mlp_autoencoder(bottlenecks.Gaussian(latent_dim=3))
    params = _init(model, digits)
    assert set(params) == {"encoder", "decoder", "mu_head", "logvar_head"}
    logits, aux = model.apply({"params": params}, digits, rngs={"noise": jax.random.key(3)})
    np.testing.assert_allclose(
        logits, model.apply({"params": params}, aux["z"], method="decode"), rtol=1e-6
    )
    assert set(aux["terms"]) == {"kl"} and "obs_logvar" not in aux


def test_a_learned_variance_is_one_parameter_reported_with_the_output(digits):
    model = _mlp_autoencoder(bottlenecks.Deterministic(), learned_variance=True)
    params = _init(model, digits)
    assert params["obs_logvar"].shape == () and float(params["obs_logvar"]) == 0.0
    params["obs_logvar"] = jnp.array(-1.5)
    _, aux = model.apply({"params": params}, digits)
    assert float(aux["obs_logvar"]) == -1.5


def test_several_samples_per_image_are_each_decoded(digits):
    """Logits [samples, B, H, W, C]: sample s of image b decoded as one code alone would be."""
    model = _mlp_autoencoder(bottlenecks.Gaussian(latent_dim=3))
    params = _init(model, digits)
    logits, aux = model.apply(
        {"params": params}, digits, samples=4, rngs={"noise": jax.random.key(3)}
    )
    assert logits.shape == (4, *digits.shape) and aux["z"].shape == (4, 6, 3)
    for s in (0, 3):
        one = model.apply({"params": params}, aux["z"][s], method="decode")
        np.testing.assert_allclose(logits[s], one, rtol=1e-5, atol=1e-6)


def test_vq_codes_decode_from_their_indices_as_from_their_vectors(digits):
    """A conv encoder's 7x7x8 map cut into vectors of 4: 98 indices an image, decoded through
    the codebook into the image the quantised map decodes to."""
    model = autoencoder.Autoencoder(
        encoder=conv.ConvEncoder((8, 8), lambda h: h),
        decoder=conv.DECODERS["nearest"]((8, 8), 1, (28, 28)),
        bottleneck=bottlenecks.VectorQuantizer(num_codes=16, code_dim=4),
    )
    params = jax.jit(model.init)(jax.random.key(1), digits)["params"]

    @jax.jit
    def encode_and_decode(params, x):
        encoding = model.apply({"params": params}, x, method="encode")
        decoded = model.apply(
            {"params": params}, encoding.indices, (7, 7, 8), method="decode_indices"
        )
        return encoding, decoded, model.apply({"params": params}, encoding.code, method="decode")

    encoding, decoded, from_vectors = encode_and_decode(params, digits)
    assert encoding.code.shape == (6, 7, 7, 8) and encoding.indices.shape == (6, 98)
    np.testing.assert_allclose(decoded, from_vectors, rtol=1e-6)
