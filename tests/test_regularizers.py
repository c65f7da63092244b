"""The penalties' maths, the configs they refuse before training instead of making NaN, and the
regularised autoencoders (RAE-L2, RAE-GP) they make, trained through `fit`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config, tiny_config

import aejax
from aejax.evaluation import figures
from aejax.models import factory
from aejax.objectives import autoencoding, regularizers


def _model_params_x(config, batch=5):
    model = factory.build(config.model)
    x = jax.random.uniform(jax.random.key(0), (batch, *config.model.image_shape))
    return model, model.init(jax.random.key(1), x)["params"], x


def test_bernoulli_kl_is_zero_at_the_target_and_positive_elsewhere():
    np.testing.assert_allclose(regularizers.bernoulli_kl(0.1, jnp.array(0.1)), 0.0, atol=1e-7)
    assert np.all(regularizers.bernoulli_kl(0.1, jnp.array([0.01, 0.3, 0.9])) > 0)


def test_contractive_closed_form_equals_the_jacfwd_jacobian(tiny):
    config = tiny("contractive")
    model, params, x = _model_params_x(config)
    params = jax.tree.map(lambda p: 3 * p, params)  # spread the code over (0, 1), off 0.5

    def encode_one(x_HxWxC):
        return model.apply({"params": params}, x_HxWxC[None], method="encode").code[0]

    jacobians_BxKxHxWxC = jax.vmap(jax.jacfwd(encode_one))(x)
    expected_B = jnp.sum(jnp.square(jacobians_BxKxHxWxC), axis=(1, 2, 3, 4))
    code_BxK = model.apply({"params": params}, x, method="encode").code
    kernel_DxK = params["encoder"]["mlp"]["dense0"]["kernel"]
    np.testing.assert_allclose(
        regularizers.sigmoid_layer_jacobian_sq_norm(code_BxK, kernel_DxK), expected_B, rtol=1e-5
    )
    # ...and the loss reports the batch mean of it under "contractive".
    _, metrics = autoencoding.make_loss_fn(model, config.loss)(params, x, jax.random.key(2), False)
    np.testing.assert_allclose(metrics["contractive"], expected_B.mean(), rtol=1e-5)


def test_l2_is_the_sum_of_squared_kernels_and_ignores_biases(tiny):
    config = tiny("stacked")
    model, params, x = _model_params_x(config)
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    _, metrics = loss_fn(params, x, jax.random.key(2), False)
    kernels = [
        params[part]["mlp"][layer]["kernel"]
        for part, layer in [
            ("encoder", "dense0"),
            ("encoder", "dense1"),
            ("decoder", "dense0"),
            ("decoder", "dense1"),
        ]
    ]
    np.testing.assert_allclose(metrics["l2"], sum(jnp.sum(k**2) for k in kernels), rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], metrics["recon"] + 1e-3 * metrics["l2"], rtol=1e-6)
    shifted = jax.tree_util.tree_map_with_path(
        lambda path, p: p + 1.0 if path[-1].key == "bias" else p, params
    )
    np.testing.assert_allclose(
        loss_fn(shifted, x, jax.random.key(2), False)[1]["l2"], metrics["l2"]
    )


@pytest.mark.parametrize("code_activation", ["relu", "tanh", "linear", "elu"])
def test_kl_sparsity_on_a_code_outside_the_unit_interval_is_refused(code_activation):
    config = load_config("sparse")
    config.model.code_activation = code_activation
    with pytest.raises(ValueError, match=r"needs a code in \(0, 1\).*code_activation='sigmoid'"):
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)


@pytest.mark.parametrize(
    "model_overrides, message",
    [
        ({"encoder_widths": (32, 16)}, r"closed-form Jacobian of one sigmoid layer.*\(32, 16\)"),
        ({"code_activation": "relu"}, "closed-form Jacobian of one sigmoid layer.*'relu'"),
    ],
)
def test_contractive_is_refused_where_its_closed_form_is_not_exact(model_overrides, message):
    config = load_config("contractive")
    config.model.update(model_overrides)
    with pytest.raises(ValueError, match=message):
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)


@pytest.mark.parametrize(
    "group, message",
    [
        ({"dropout": {"weight": 1.0}}, "unknown regularizer 'dropout'.*contractive"),
        ({"kl_sparsity": {"weight": 0.2}}, r"kl_sparsity takes weight and \['target'\], got \[\]"),
        ({"l2": {"weight": -1.0}}, "l2.weight must be finite and >= 0"),
        ({"kl_sparsity": {"weight": 0.2, "target": 1.0}}, r"target must be in \(0, 1\)"),
    ],
)
def test_bad_regularizer_groups_are_refused(group, message):
    config = load_config("sparse")
    config.loss.regularizers = group
    with pytest.raises(ValueError, match=message):
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)


def test_code_penalties_on_a_vae_are_refused():
    config = load_config("vae")
    config.loss.regularizers = {"l1_sparsity": {"weight": 1.0}}
    with pytest.raises(ValueError, match="'l1_sparsity' needs an Autoencoder"):
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)


def test_code_l2_is_half_the_squared_norm_per_image_averaged():
    config = tiny_config("rae_l2")
    model, params, _ = _model_params_x(config)
    code = jnp.asarray([[3.0, 4.0], [0.0, 0.0]])
    assert float(regularizers.code_l2(model)(params, {"code": code})) == pytest.approx(6.25)


def test_decoder_l2_counts_the_decoders_kernels_alone():
    config = tiny_config("rae_l2")
    model, params, x = _model_params_x(config)
    term = regularizers.decoder_l2(model)
    expected = sum(jnp.sum(v["kernel"] ** 2) for v in params["decoder"]["mlp"].values())
    np.testing.assert_allclose(term(params, {}), expected, rtol=1e-6)
    moved = jax.tree_util.tree_map_with_path(
        lambda path, p: p + 1.0 if path[0].key == "encoder" else p, params
    )
    np.testing.assert_allclose(term(moved, {}), expected, rtol=1e-6)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_decoder_gradient_of_one_dense_layer_by_hand(likelihood):
    """D(z) = z W + b: the summed output's gradient is W's row sums (times sigmoid' for the
    Bernoulli mean), the same for every image of a gaussian likelihood."""
    config = tiny_config("rae_gp", model__decoder_widths=())
    model, params, _ = _model_params_x(config)
    kernel_KxD = params["decoder"]["mlp"]["dense0"]["kernel"]
    bias_D = params["decoder"]["mlp"]["dense0"]["bias"]
    code_BxK = jax.random.normal(jax.random.key(3), (4, kernel_KxD.shape[0]))
    if likelihood == "gaussian":
        grad_BxK = jnp.broadcast_to(jnp.sum(kernel_KxD, axis=1), code_BxK.shape)
    else:
        mean_BxD = jax.nn.sigmoid(code_BxK @ kernel_KxD + bias_D)
        grad_BxK = (mean_BxD * (1 - mean_BxD)) @ kernel_KxD.T
    term = regularizers.decoder_gradient(model, likelihood=likelihood)
    expected = jnp.mean(jnp.sum(grad_BxK**2, axis=1))
    np.testing.assert_allclose(term(params, {"code": code_BxK}), expected, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name,penalty", [("rae_l2", "decoder_l2"), ("rae_gp", "decoder_gradient")])
def test_a_regularised_autoencoder_learns_and_reports_its_penalties(name, penalty, tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    run = aejax.fit(tiny_config(name), workdir=tmp_path, train__epochs=2)
    first, last = run.metrics()
    assert last["test/loss"] < first["test/loss"]
    assert last["train/code_l2"] > 0 and last[f"train/{penalty}"] > 0
