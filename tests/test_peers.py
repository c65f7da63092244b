"""The PyTorch and Keras peers build aejax's models: the same parameter counts, the same init.

CI installs only `.[test]`, without PyTorch or Keras, so these skip there; they run where the
`peers` extra is installed.
"""

import importlib.util
import math

import jax
import numpy as np
import pytest

from aejax import configs
from aejax.models import factory
from benchmarks.peers import common

EXPECTED = {"mlp": 50_992, "vae": 1_316_824, "conv": 4_385}  # aejax's, for 28x28x1 images


def aejax_reference(model: str):
    """aejax's (kernel, bias) pairs in the order the layers apply, an input, and its logits.

    The VAE's log-variance head is set to a constant -60, so its samples are its means to
    1e-13 and every framework's logits are a function of the input alone."""
    cfg = factory.fit_to_data(configs.load(model).model, common.IMAGE_SHAPE, None)
    module = factory.build(cfg)
    x = np.random.default_rng(0).random((2, *common.IMAGE_SHAPE), np.float32)
    params = module.init(jax.random.key(0), x)["params"]
    if "logvar_head" in params:
        head = params["logvar_head"]
        params["logvar_head"] = {"kernel": 0 * head["kernel"], "bias": head["bias"] - 60.0}
    logits, _ = module.apply({"params": params}, x, rngs={"noise": jax.random.key(1)})

    def layers(tree):  # dense0, dense1, ...; conv0, ..., logits: sorted names are layer order
        if "kernel" in tree:
            yield np.asarray(tree["kernel"]), np.asarray(tree["bias"])
        else:
            for name in sorted(tree):
                yield from layers(tree[name])

    parts = [p for p in ("encoder", "mu_head", "logvar_head", "decoder") if p in params]
    return [pair for part in parts for pair in layers(params[part])], x, np.asarray(logits)


@pytest.mark.parametrize("model", common.MODELS)
def test_aejax_counts(model):
    assert common.aejax_param_count(model) == EXPECTED[model]


@pytest.mark.parametrize("model", common.MODELS)
def test_torch_models_match_aejax(model):
    torch = pytest.importorskip("torch", reason="the peers extra is not installed (as in CI)")
    from benchmarks.peers import torch_loop

    build, loss_fn = torch_loop.MODELS[model]
    net = build()
    assert torch_loop.param_count(net) == EXPECTED[model]
    x = torch.rand(2, 1, 28, 28)
    out = net(x)
    assert (out[0] if isinstance(out, tuple) else out).shape == x.shape
    assert torch.isfinite(loss_fn(net, x))


@pytest.mark.parametrize("model", common.MODELS)
def test_torch_models_compute_aejax_s(model):
    """aejax's parameters in the PyTorch model give aejax's logits: the same layers in the
    same order, paddings and pooling included."""
    torch = pytest.importorskip("torch", reason="the peers extra is not installed (as in CI)")
    from benchmarks.peers import torch_loop

    pairs, x, logits = aejax_reference(model)
    net = torch_loop.MODELS[model][0]()
    weighted = [m for m in net.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    with torch.no_grad():
        for layer, (kernel, bias) in zip(weighted, pairs, strict=True):
            # flax's [in, out] and [h, w, in, out] kernels; PyTorch's [out, in] and [out, in, h, w]
            layer.weight.copy_(
                torch.tensor(kernel.T if kernel.ndim == 2 else kernel.transpose(3, 2, 0, 1))
            )
            layer.bias.copy_(torch.tensor(bias))
        out = net(torch.from_numpy(x).permute(0, 3, 1, 2))
        out = (out[0] if isinstance(out, tuple) else out).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out, logits, rtol=1e-4, atol=1e-5)


def test_torch_lecun_normal_is_flax_s():
    """Variance 1 / fan_in and support within two of its truncated standard deviations."""
    torch = pytest.importorskip("torch", reason="the peers extra is not installed (as in CI)")
    from benchmarks.peers import torch_loop

    torch.manual_seed(0)
    weight = torch.empty(500, 784)
    torch_loop.lecun_normal_(weight)
    assert weight.std().item() == pytest.approx(1 / math.sqrt(784), rel=0.01)
    bound = 2 / math.sqrt(784) / torch_loop.TRUNCATED_NORMAL_STD
    assert weight.abs().max().item() <= bound


@pytest.mark.parametrize("model", common.MODELS)
def test_keras_models_match_aejax(model):
    if importlib.util.find_spec("keras") is None:  # imported by keras_fit, which picks the backend
        pytest.skip("the peers extra is not installed (as in CI)")
    from benchmarks.peers import keras_fit

    if keras_fit.keras.backend.backend() != "jax":
        pytest.skip("Keras was imported with another backend before this test")
    build, _ = keras_fit.MODELS[model]
    net = build(0)
    assert net.count_params() == EXPECTED[model]
    assert tuple(net.output.shape[1:]) == common.IMAGE_SHAPE


@pytest.mark.parametrize("model", common.MODELS)
def test_keras_models_compute_aejax_s(model):
    """aejax's parameters in the Keras model give aejax's logits (both are channels last)."""
    if importlib.util.find_spec("keras") is None:
        pytest.skip("the peers extra is not installed (as in CI)")
    from benchmarks.peers import keras_fit

    if keras_fit.keras.backend.backend() != "jax":
        pytest.skip("Keras was imported with another backend before this test")
    pairs, x, logits = aejax_reference(model)
    net = keras_fit.MODELS[model][0](0)
    weighted = [layer for layer in net.layers if layer.weights]
    for layer, pair in zip(weighted, pairs, strict=True):
        layer.set_weights(list(pair))
    np.testing.assert_allclose(np.asarray(net(x)), logits, rtol=1e-4, atol=1e-5)
