"""`factory.build`: the model a config describes. Any encoder with any bottleneck and decoder, the
shipped models' shapes and parameter counts, parts and fields chosen by config (refused, naming
the field, when unknown or missing), the config fitted to the data, and biases set from it."""

import functools
import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import load_config

from aejax.configs import fields
from aejax.data import sources
from aejax.models import factory
from aejax.training import validate
from aejax.training.state import create_state

SHAPES = [(28, 28, 1), (32, 32, 3)]
ENCODERS = ["mlp", "conv", "resnet"]
BOTTLENECKS = ["deterministic", "gaussian", "vq", "vq_ema", "wta", "mmd", "adversarial"]
DECODERS = ["mlp", "tied", "nearest", "resize", "transpose"]


def composed(encoder, bottleneck, decoder, image_shape=(28, 28, 1)) -> ml_collections.ConfigDict:
    """A tiny config of the chosen parts, every part's fields set."""
    config = fields.base()
    m = config.model
    m.name, m.encoder, m.decoder, m.image_shape = "autoencoder", encoder, decoder, image_shape
    m.bottleneck = {"vq_ema": "vq", "mmd": "deterministic", "adversarial": "deterministic"}.get(
        bottleneck, bottleneck
    )
    m.codebook = "ema" if bottleneck == "vq_ema" else "loss"
    m.prior_match = bottleneck if bottleneck in ("mmd", "adversarial") else "none"
    m.encoder_widths, m.activation, m.code_activation = (16, 8), "relu", "linear"
    m.encoder_features, m.decoder_features = (8, 8), (8, 8)
    m.latent_dim, m.num_codes, m.code_dim, m.discriminator_widths = 4, 16, 4, (8,)
    m.lifetime_rate = 0.5
    return config


def _combinations():
    for encoder, bottleneck, decoder in itertools.product(ENCODERS, BOTTLENECKS, DECODERS):
        if decoder == "tied" and (encoder != "mlp" or bottleneck == "gaussian"):
            continue  # a tied decoder mirrors an mlp encoder's code: refused below
        yield encoder, bottleneck, decoder


@pytest.mark.parametrize("image_shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("encoder,bottleneck,decoder", list(_combinations()))
def test_any_encoder_pairs_with_any_decoder_through_any_bottleneck(
    encoder, bottleneck, decoder, image_shape
):
    """Shapes only (traced, not run): logits of the image's shape, a code per image, terms."""
    model = factory.build(composed(encoder, bottleneck, decoder, image_shape).model)
    x = jnp.zeros((4, *image_shape))
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    variables = jax.eval_shape(model.init, rngs, x)
    logits, aux = jax.eval_shape(
        lambda v: model.apply(v, x, train=True, rngs={"noise": jax.random.key(2)}, mutable=True)[0],
        variables,
    )
    encoding = jax.eval_shape(lambda v: model.apply(v, x, method="encode"), variables)
    assert logits.shape == x.shape
    assert encoding.code.shape[0] == 4
    expected_terms = {
        "deterministic": set(),
        "wta": set(),
        "gaussian": {"kl"},
        "vq": {"codebook", "commitment"},
        "vq_ema": {"codebook", "commitment"},
        "mmd": {"mmd"},
        "adversarial": {"discriminator", "adversarial"},
    }[bottleneck]
    assert set(aux["terms"]) == expected_terms


@pytest.mark.parametrize("encoder,bottleneck", [("conv", "deterministic"), ("mlp", "gaussian")])
def test_a_tied_decoder_without_an_mlp_code_is_refused(encoder, bottleneck):
    with pytest.raises(ValueError, match="a tied decoder mirrors an mlp encoder"):
        factory.build(composed(encoder, bottleneck, "tied").model)


def test_an_unknown_part_is_refused_naming_the_choices():
    config = composed("mlp", "deterministic", "mlp")
    config.model.bottleneck = "vqq"
    with pytest.raises(ValueError, match=r"unknown bottleneck 'vqq' .*'vq'"):
        factory.build(config.model)


def test_presets_give_the_parts_and_the_fields_override_them():
    """`model.name` picks (encoder, bottleneck, decoder); each field set replaces its part, and
    only an EMA codebook is a parameter group set by assignment."""
    assert factory.structure(load_config("vae").model) == ("mlp", "gaussian", "mlp")
    assert factory.structure(load_config("tied").model) == ("mlp", "deterministic", "tied")
    conv = load_config("conv").model
    assert factory.structure(conv) == ("conv", "deterministic", conv.upsampling)
    conv.bottleneck, conv.decoder = "wta", "transpose"
    assert factory.structure(conv) == ("conv", "wta", "transpose")
    assert factory.assigned_groups(load_config("vqvae_ema").model) == ("codebook",)
    assert factory.assigned_groups(load_config("vqvae").model) == ()
    assert factory.assigned_groups(load_config("vae").model) == ()


def test_a_part_swapped_in_takes_derived_sizes_and_any_config_can_set_them():
    config = load_config("vae")
    config.model.encoder = "resnet"
    images = np.zeros((1, 28, 28, 1), np.float32)
    encoder = create_state(config, images).params["encoder"]  # factory.CONV_FEATURES
    assert [encoder[f"skip{i}"]["kernel"].shape[-1] for i in range(3)] == [16, 32, 32]
    config.model.encoder_features = (4, 8)
    state = create_state(config, images)
    assert [state.params["encoder"][f"skip{i}"]["kernel"].shape[-1] for i in range(2)] == [4, 8]
    assert "mu_head" in state.params


# --- the shipped models' shapes and sizes -----------------------------------------------------


def _init(config, batch=3):
    model = factory.build(config.model)
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:batch])
    params = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)["params"]
    return model, params, x


def _count(params) -> int:
    return sum(p.size for p in jax.tree.leaves(params))


def _shapes(config, batch=3):
    """The model, its parameters' shapes and its output's, traced without being run: all a
    size is."""
    model = factory.build(config.model)
    x = jax.ShapeDtypeStruct((batch, 28, 28, 1), jnp.float32)
    rngs = {"params": jax.random.key(1), "noise": jax.random.key(2)}
    params = jax.eval_shape(model.init, rngs, x)["params"]
    apply = functools.partial(model.apply, rngs={"noise": jax.random.key(3)})
    logits, aux = jax.eval_shape(apply, {"params": params}, x)
    return params, x, logits, aux


def test_mlp_autoencoder_shapes_and_parameter_count():
    model, params, x = _init(load_config("mlp"))
    logits, aux = model.apply({"params": params}, x)
    assert logits.shape == x.shape and aux["code"].shape == (3, 32)
    assert np.all(aux["code"] >= 0)  # ReLU code
    assert _count(params) == (784 * 32 + 32) + (32 * 784 + 784)


def test_textbook_vae_shapes_and_parameter_count():
    params, x, logits, aux = _shapes(load_config("vae"))
    assert logits.shape == x.shape
    assert aux["mu"].shape == aux["logvar"].shape == aux["z"].shape == (3, 20)
    encoder = (784 * 500 + 500) + (500 * 500 + 500) + 2 * (500 * 20 + 20)
    decoder = (20 * 500 + 500) + (500 * 500 + 500) + (500 * 784 + 784)
    assert _count(params) == encoder + decoder


def test_conv_vae_shapes_and_parameter_count():
    params, x, logits, aux = _shapes(load_config("conv_vae"))
    assert logits.shape == x.shape and aux["z"].shape == (3, 16)

    def conv(c_in, c_out):
        return 9 * c_in * c_out + c_out

    encoder = conv(1, 16) + conv(16, 32) + conv(32, 32) + 2 * (512 * 16 + 16)  # 4x4x32 = 512
    decoder = (16 * 512 + 512) + conv(32, 32) + conv(32, 32) + conv(32, 16) + conv(16, 1)
    assert _count(params) == encoder + decoder


def test_a_conv_code_takes_the_configs_code_activation():
    """ReLU by default; a linear last layer (vqvae's) gives codes of both signs, the same
    parameters otherwise."""
    config = load_config("conv")
    model, params, x = _init(config)
    relu_code = model.apply({"params": params}, x, method="encode").code
    config.model.code_activation = "linear"
    linear = factory.build(config.model)
    linear_code = linear.apply({"params": params}, x, method="encode").code
    assert np.all(relu_code >= 0) and np.any(linear_code < 0)
    np.testing.assert_array_equal(relu_code[linear_code > 0], linear_code[linear_code > 0])
    assert load_config("vqvae").model.code_activation == "linear"


def test_an_unknown_model_is_refused_naming_the_registered_ones():
    config = load_config("mlp")
    config.model.name = "transformer"
    with pytest.raises(ValueError, match="unknown model 'transformer'.*registered models"):
        factory.build(config.model)


def test_kernel_init_is_chosen_by_the_config():
    config = load_config("stacked")  # he_normal: variance 2 / fan_in
    _, params, _ = _init(config)
    kernel = params["encoder"]["mlp"]["dense0"]["kernel"]
    np.testing.assert_allclose(np.std(kernel), np.sqrt(2 / 784), rtol=0.02)
    config.model.kernel_init = "orthogonal"
    with pytest.raises(ValueError, match="unknown kernel_init 'orthogonal'.*he_normal"):
        factory.build(config.model)


# --- fitted to the data -------------------------------------------------------------------------


def test_a_classifier_takes_its_classes_from_the_labels():
    config = load_config("conv_classifier").model
    fitted = factory.fit_to_data(config, (32, 32, 3), 4)
    assert fitted.num_classes == 4 and tuple(fitted.autoencoder.image_shape) == (32, 32, 3)
    with pytest.raises(ValueError, match="a classifier needs labelled data"):
        factory.fit_to_data(config, (32, 32, 3), None)


def test_output_bias_starts_at_the_logits_of_the_pixel_means():
    """Random images, one pixel always black: any means serve, and that pixel's mean of 0 has
    no finite logit unless it is clipped."""
    config = load_config("iwae")
    _, params, _ = _init(config)
    images = jax.random.uniform(jax.random.key(5), (50, 28, 28, 1)).at[:, 0, 0].set(0.0)
    params = factory.init_from_data(config.model, params, images)
    bias = params["decoder"]["mlp"]["dense2"]["bias"]  # 50-200-200-784: the third layer
    means = np.clip(images.mean(0).ravel(), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(jax.nn.sigmoid(bias), means, rtol=1e-4)
    assert np.isfinite(bias[0])  # an always-black pixel gets a finite bias
    config.model.name = "conv_vae"
    with pytest.raises(ValueError, match="needs an MLP decoder"):
        factory.init_from_data(config.model, {"decoder": {"conv": {}}}, images)
