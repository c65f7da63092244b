"""Greedy layer-wise phases: phase k trains encoder layer k and its mirror on the code of the
layers below, through the model's own modules: a tied phase uses one kernel twice, each phase
pays the L2 penalty on its own kernels, conv phases follow the encoder's maps, and phases that
cannot work are refused."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import load_config

from aejax.data import sources
from aejax.models import factory
from aejax.objectives import layerwise
from aejax.training import pretrain


def test_each_layer_is_a_phase_and_names_the_pair_it_trains():
    stacked = load_config("stacked").model  # 784-300-150-300-784
    assert layerwise.depth(stacked) == 2
    assert layerwise.trainable_pair(stacked, 0) == ("encoder/mlp/dense0", "decoder/mlp/dense1")
    assert layerwise.trainable_pair(stacked, 1) == ("encoder/mlp/dense1", "decoder/mlp/dense0")
    tied = load_config("tied").model  # the mirror is the kernel itself and the decoder's bias
    assert layerwise.trainable_pair(tied, 0) == ("encoder/mlp/dense0", "decoder/bias0")
    conv = load_config("conv_greedy").model  # 3 conv layers; layer 0 also owns the logits
    assert layerwise.depth(conv) == 3
    prefix = layerwise.CONV_MIRROR_LAYERS[factory.structure(conv)[2]]
    assert layerwise.trainable_pair(conv, 0) == ("encoder/conv0", f"decoder/{prefix}2", "decoder/logits")
    assert layerwise.trainable_pair(conv, 2) == ("encoder/conv2", f"decoder/{prefix}0")


def _phase_loss_config(config, layer: int):
    """The loss config of phase `layer` of `config`, greedy or not."""
    config = ml_collections.ConfigDict(config.to_dict())
    config.pretrain = {"layer_epochs": 1, "finetune": False}
    return pretrain.phase_config(config, layer, "").loss


@pytest.mark.parametrize("layer", [0, 1])
def test_a_tied_phase_is_the_untied_phase_with_one_kernel_used_twice(tiny, layer):
    """The tied phase equals the untied one whose mirror kernel is W.T, and W's gradient is the
    sum of its two uses' gradients: one parameter, shared."""
    tied = tiny("tied_mse", model__encoder_widths=(16, 8))
    untied = tiny("stacked_mse", model__encoder_widths=(16, 8))
    for config in (tied, untied):
        config.loss = _phase_loss_config(config, layer)
        config.loss.regularizers = {}  # L2 counts a tied kernel once, an untied pair twice
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:32])
    tied_model, untied_model = factory.build(tied.model), factory.build(untied.model)
    params = tied_model.init(jax.random.key(0), x)["params"]
    mirror = f"dense{1 - layer}"
    kernel = params["encoder"]["mlp"][f"dense{layer}"]["kernel"]
    untied_params = untied_model.init(jax.random.key(0), x)["params"]
    untied_params = {
        "encoder": params["encoder"],
        "decoder": {
            "mlp": {
                **untied_params["decoder"]["mlp"],
                mirror: {"kernel": kernel.T, "bias": params["decoder"][f"bias{layer}"]},
            }
        },
    }
    tied_loss = layerwise.make_layer_loss_fn(tied_model, tied.loss)
    untied_loss = layerwise.make_layer_loss_fn(untied_model, untied.loss)

    def grads(loss_fn, p):
        return jax.jit(jax.grad(lambda p: loss_fn(p, x, jax.random.key(1), True)[0]))(p)

    np.testing.assert_allclose(
        tied_loss(params, x, jax.random.key(1), True)[0],
        untied_loss(untied_params, x, jax.random.key(1), True)[0],
        rtol=1e-6,
    )
    g_tied, g_untied = grads(tied_loss, params), grads(untied_loss, untied_params)
    both_uses = (
        g_untied["encoder"]["mlp"][f"dense{layer}"]["kernel"]
        + g_untied["decoder"]["mlp"][mirror]["kernel"].T
    )
    np.testing.assert_allclose(
        g_tied["encoder"]["mlp"][f"dense{layer}"]["kernel"], both_uses, rtol=1e-4, atol=1e-7
    )


@pytest.mark.parametrize("name", ["tied_mse", "stacked_mse"])
def test_each_phase_pays_l2_on_its_own_kernels(tiny, name):
    config = tiny(name, model__encoder_widths=(16, 8))
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:8])
    model = factory.build(config.model)
    params = model.init(jax.random.key(0), x)["params"]
    weight = config.loss.regularizers.l2.weight
    for layer in (0, 1):
        loss_cfg = _phase_loss_config(config, layer)
        loss, metrics = layerwise.make_layer_loss_fn(model, loss_cfg)(params, x, None, False)
        kernels = [params["encoder"]["mlp"][f"dense{layer}"]["kernel"]]
        if name == "stacked_mse":
            kernels.append(params["decoder"]["mlp"][f"dense{1 - layer}"]["kernel"])
        np.testing.assert_allclose(metrics["l2"], sum(jnp.sum(k**2) for k in kernels), rtol=1e-6)
        np.testing.assert_allclose(loss, metrics["recon"] + weight * metrics["l2"], rtol=1e-6)


def test_penalties_of_the_whole_code_are_refused_in_phases(tiny):
    config = tiny("sparse")
    with pytest.raises(ValueError, match="carries only the l2 penalty.*'kl_sparsity'"):
        layerwise.make_layer_loss_fn(factory.build(config.model), _phase_loss_config(config, 0))


def test_conv_phases_follow_the_encoders_maps_and_compose_to_the_whole_model(tiny):
    """Phase k's encoder layer maps the previous layer's output (28 -> 14 -> 7 -> 4 sides) and
    its mirror gives back a map of that input's shape; chained, the phases' layers are the
    model's own: encode then decode through them is the autoencoder's output, bitwise."""
    config = tiny("conv_greedy")  # encoder 16-16-8, decoder 16-16-16
    model = factory.build(config.model)
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:4], jnp.float32) / 255
    params = jax.jit(model.init)(jax.random.key(0), x)["params"]
    stack = layerwise._stack(model)

    @jax.jit
    def through_the_phases(params, x):
        maps, backs = [x], []
        for layer in range(stack.depth):
            maps.append(stack.encode(params, layer, maps[-1]))
            backs.append(stack.mirror(params, layer, maps[-1]))
        h = maps[-1]
        for layer in reversed(range(stack.depth)):
            h = stack.mirror(params, layer, h)
        code = model.apply({"params": params}, x, method="encode").code
        return maps, backs, h, code, model.apply({"params": params}, x)[0]

    maps, backs, h, code, logits = through_the_phases(params, x)
    for layer, back in enumerate(backs):
        assert back.shape == maps[layer].shape, layer  # the mirror gives back its input's shape
    assert [m.shape[1:] for m in maps] == [(28, 28, 1), (14, 14, 16), (7, 7, 16), (4, 4, 8)]
    np.testing.assert_array_equal(maps[-1], code)
    np.testing.assert_array_equal(h, logits)

