"""The convolutional autoencoders: shapes, parameter counts, the reshape forms, and learning."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import initial_test_metrics, load_config

from aejax.models import conv, factory
from aejax.training import loop
from benchmarks import conv_layers, conv_variants


def conv_params(c_in: int, c_out: int) -> int:
    return 9 * c_in * c_out + c_out


CONV = (conv_params(1, 16) + conv_params(16, 8) + 3 * conv_params(8, 8) + conv_params(8, 16)
        + conv_params(16, 1))  # 160 + 1,160 + 3 * 584 + 1,168 + 145 = 4,385
CONV_DENOISING = (conv_params(1, 32) + conv_params(32, 32) + conv_params(32, 16)
                  + conv_params(16, 16) + conv_params(16, 32) + conv_params(32, 32)
                  + conv_params(32, 1))  # 320+9,248+4,624+2,320+4,640+9,248+289 = 30,689
CONV_ZOO = {  # config: (code shape, parameter count); resizing has no parameters
    "conv": ((4, 4, 8), CONV),
    "conv_denoising": ((4, 4, 16), CONV_DENOISING),
    "conv_resize": ((4, 4, 8), CONV),
    "conv_denoising_resize": ((4, 4, 16), CONV_DENOISING),
    "conv_twopool": ((7, 7, 8), conv_params(1, 16) + conv_params(16, 8) + conv_params(8, 8)
                     + conv_params(8, 16) + conv_params(16, 1)),  # 160+1,160+584+1,168+145 = 3,217
}


@pytest.mark.parametrize("name", CONV_ZOO)
def test_code_and_reconstruction_shapes_and_parameter_count(name):
    code_shape, parameters = CONV_ZOO[name]
    model = factory.build(load_config(name).model)
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    params = model.init(jax.random.key(1), x)["params"]
    logits, aux = model.apply({"params": params}, x)
    assert logits.shape == x.shape and aux["code"].shape == (3, *code_shape)
    assert sum(p.size for p in jax.tree.leaves(params)) == parameters


def test_transposed_decoder_retraces_the_encoder_sides():
    """Stride-2 transposed convolutions give 4 -> 7 -> 14 -> 28, with Conv's parameter count."""
    model = factory.build(load_config("conv_transpose").model)
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


def _conv_sides(name: str) -> dict[str, tuple[int, int]]:
    """Each decoder convolution's input and output sides, by layer name, for config `name`."""
    model = factory.build(load_config(name).model)
    x = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
    params = model.init(jax.random.key(1), x)["params"]
    ins, outs = {}, {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if isinstance(module, nn.Conv) and module.path[0] == "decoder":
            doubled = module.conv_general_dilated is conv.conv_of_upsampled  # reads its input x2
            ins[module.name], outs[module.name] = args[0].shape[1] * (1 + doubled), out.shape[1]
        return out

    with nn.intercept_methods(record):
        logits, _ = model.apply({"params": params}, x)
    assert logits.shape == x.shape
    return {name: (ins[name], outs[name]) for name in ins}


@pytest.mark.parametrize(
    "name, sides",
    [  # (input side, output side) of decoder conv0, conv1, conv2 (if any), logits
        ("conv", [(4, 4), (8, 8), (16, 14), (28, 28)]),  # conv then double, the VALID trim
        ("conv_resize", [(7, 7), (14, 14), (28, 28), (28, 28)]),  # resize 4 -> 7 first
        ("conv_denoising_resize", [(7, 7), (14, 14), (28, 28), (28, 28)]),
        ("conv_twopool", [(7, 7), (14, 14), (28, 28)]),  # from 7x7, no trim
    ],
)
def test_decoder_paths_visit_their_sides(name, sides):
    assert list(_conv_sides(name).values()) == sides


@pytest.mark.parametrize("side", [4, 7])
@pytest.mark.parametrize("pad_h, pad_w", [((1, 1), (1, 1)), ((0, 0), (0, 0)), ((1, 0), (0, 1))])
def test_conv_of_upsampled_is_the_convolution_of_the_doubled_map(side, pad_h, pad_w):
    """The same outputs and gradients as convolving the explicitly doubled map, for every
    padding the decoders use, odd sides included."""
    u = jax.random.normal(jax.random.key(0), (2, side, side + 1, 3))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))

    def explicit(u, kernel):
        dims = ("NHWC", "HWIO", "NHWC")
        doubled, padding = conv.upsample_2x(u), (pad_h, pad_w)
        return jax.lax.conv_general_dilated(
            doubled, kernel, (1, 1), padding, dimension_numbers=dims
        )

    def folded(u, kernel):
        return conv.conv_of_upsampled(u, kernel, (1, 1), (pad_h, pad_w))

    np.testing.assert_allclose(folded(u, kernel), explicit(u, kernel), atol=1e-5)
    dy = jax.random.normal(jax.random.key(2), explicit(u, kernel).shape)
    grads = [jax.grad(lambda u, k, f=f: jnp.vdot(f(u, k), dy), (0, 1)) for f in (folded, explicit)]
    for got, want in zip(*(grad(u, kernel) for grad in grads)):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_conv_of_upsampled_refuses_what_it_does_not_compute_and_reads_lax_names():
    u, kernel = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="pads 0 or 1"):
        conv.conv_of_upsampled(u, kernel, (1, 1), ((2, 2), (1, 1)))
    with pytest.raises(ValueError, match="stride 1"):
        conv.conv_of_upsampled(u, kernel, (2, 2), ((1, 1), (1, 1)))
    with pytest.raises(ValueError, match="undilated"):
        conv.conv_of_upsampled(u, kernel, (1, 1), ((1, 1), (1, 1)), rhs_dilation=(2, 2))
    named = conv.conv_of_upsampled(u, kernel, (1, 1), "VALID")  # lax's names are understood
    np.testing.assert_array_equal(named, conv.conv_of_upsampled(u, kernel, (1, 1), [(0, 0)] * 2))


@pytest.mark.parametrize(
    "image_side, last_padding",  # 16 -> 14 (28 cropped to 27), 16 -> 15
    [(28, "VALID"), (27, "VALID"), (30, [(1, 0), (1, 0)])],
)
def test_nearest_decoder_is_conv_then_double(image_side, last_padding):
    """The decoder's folded convolutions compute what its layers describe: conv, relu, double,
    the last trimmed to the image, then the logits' convolution (an odd side cropped first)."""
    decoder = conv.ConvDecoder(image_hw=(image_side, image_side))
    z = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
    params = decoder.init(jax.random.key(1), z)["params"]
    dims = ("NHWC", "HWIO", "NHWC")

    def layer(h, name, padding):
        kernel, bias = params[name]["kernel"], params[name]["bias"]
        out = jax.lax.conv_general_dilated(h, kernel, (1, 1), padding, dimension_numbers=dims)
        return out + bias

    h = z
    for i, padding in enumerate(["SAME", "SAME", last_padding]):
        h = conv.upsample_2x(jax.nn.relu(layer(h, f"conv{i}", padding)))
    want = layer(h[:, :image_side, :image_side], "logits", "SAME")
    np.testing.assert_allclose(decoder.apply({"params": params}, z), want, atol=1e-5)


def test_resize_decoder_is_resize_then_conv():
    """Its doublings (7 -> 14, 14 -> 28) folded into the convolutions after them compute what
    its layers describe: nearest resize to the encoder's side, conv, relu; then the logits."""
    decoder = conv.ResizeConvDecoder()
    z = jax.random.normal(jax.random.key(0), (2, 4, 4, 8))
    params = decoder.init(jax.random.key(1), z)["params"]
    dims = ("NHWC", "HWIO", "NHWC")

    def layer(h, name):
        kernel, bias = params[name]["kernel"], params[name]["bias"]
        out = jax.lax.conv_general_dilated(h, kernel, (1, 1), "SAME", dimension_numbers=dims)
        return out + bias

    h = z
    for i, side in enumerate([7, 14, 28]):
        h = jax.nn.relu(layer(conv.resize_nearest(h, side, side), f"conv{i}"))
    np.testing.assert_allclose(decoder.apply({"params": params}, z), layer(h, "logits"), atol=1e-5)


def test_resize_repeats_rows_as_tf1_nearest_neighbour_resize():
    """4 -> 7 takes rows floor(i * 4 / 7): 0, 0, 1, 1, 2, 2, 3; a doubling repeats each row."""
    x = jnp.arange(4.0).reshape(1, 4, 1, 1) * jnp.ones((1, 1, 4, 1))
    np.testing.assert_array_equal(conv.resize_nearest(x, 7, 7)[0, :, 0, 0], [0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(conv.resize_nearest(x, 7, 7)[0, 0, :, 0], [0] * 7)
    y = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))
    np.testing.assert_array_equal(conv.resize_nearest(y, 14, 14), jnp.repeat(jnp.repeat(y, 2, 1), 2, 2))


def test_two_pool_classifier_reads_the_flattened_reconstruction():
    """The head's kernel is [784, 10]: it sees the 28x28 output, so the decoder's parameters
    are the classifier's and change its logits."""
    model = factory.build(load_config("conv_twopool_classifier").model)
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    params = model.init(jax.random.key(1), x)["params"]
    assert params["head"]["kernel"].shape == (784, 10)
    assert set(params["autoencoder"]) == {"encoder", "decoder"}
    head = 784 * 10 + 10
    assert sum(p.size for p in jax.tree.leaves(params)) == CONV_ZOO["conv_twopool"][1] + head
    logits, _ = model.apply({"params": params}, x)
    def shift_output_bias(path, p):
        name = jax.tree_util.keystr(path, simple=True, separator="/")
        return p + 1.0 if name == "autoencoder/decoder/logits/bias" else p

    moved = jax.tree.map_with_path(shift_output_bias, params)
    assert not np.allclose(model.apply({"params": moved}, x)[0], logits)


def test_unknown_upsampling_is_refused():
    config = load_config("conv")
    config.model.upsampling = "bilinear"
    with pytest.raises(ValueError, match="unknown upsampling 'bilinear'"):
        factory.build(config.model)


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
@pytest.mark.slow
def test_short_training_lowers_the_loss(tmp_path, monkeypatch, name, epochs):
    monkeypatch.setattr("aejax.evaluation.figures.write_figures", lambda *args, **kwargs: None)
    config = load_config(name)
    config.train.epochs, config.train.save_every_steps = epochs, 1000
    if name == "conv_denoising":  # its 32-channel layers train at about 60 samples/s here
        config.model.encoder_features, config.model.decoder_features = (8, 8, 4), (4, 8, 8)
    start = initial_test_metrics(config)
    _, row = loop.train_and_evaluate(config, tmp_path)
    assert row["test/loss"] < 0.6 * start["loss"], (start, row)


def test_encoder_and_decoder_layer_counts_must_match():
    config = load_config("conv")
    config.model.decoder_features = (8, 16)
    with pytest.raises(ValueError, match="as many decoder as encoder layers"):
        factory.build(config.model)


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
    model = factory.build(config)
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


def test_benchmarked_conv_step_variants_compute_one_function():
    """`benchmarks/conv_variants.py` times one function in every form: each variant's logits
    equal the unfolded step's, and the first-maximum pooling's gradient is JAX's where a block
    has one maximum (random values)."""
    conv_variants.check_same_function(conv_variants.VARIANTS)
    x = jax.random.normal(jax.random.key(6), (2, 6, 6, 3))
    grads = [jax.grad(lambda x, f=f: jnp.sum(jnp.sin(f(x))))(x) for f in
             (conv_variants.pool_to_first_max, conv.max_pool_2x2)]  # fmt: skip
    np.testing.assert_allclose(*grads, atol=1e-6)
