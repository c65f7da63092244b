"""The objectives' maths: KL in closed form, likelihoods, and the ELBO's parts."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.models import bottlenecks, factory
from aejax.objectives import autoencoding, likelihoods


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = jnp.zeros((3, 5))
    np.testing.assert_allclose(bottlenecks.gaussian_kl(zeros, zeros), 0.0, atol=1e-7)
    mu, logvar = jax.random.normal(jax.random.key(0), (2, 3, 5))
    assert np.all(bottlenecks.gaussian_kl(mu, logvar) > 0)


def test_closed_form_kl_matches_monte_carlo():
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    mu, logvar = jax.random.normal(k1, (4,)), 0.5 * jax.random.normal(k2, (4,))
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k3, (200_000, 4))
    log_q = jax.scipy.stats.norm.logpdf(z, mu, jnp.exp(0.5 * logvar)).sum(-1)
    log_p = jax.scipy.stats.norm.logpdf(z).sum(-1)
    np.testing.assert_allclose(jnp.mean(log_q - log_p), bottlenecks.gaussian_kl(mu, logvar), rtol=0.02)


def test_sigma_kl_equals_logvar_kl_at_equal_posteriors_within_the_eps():
    """sigma = exp(logvar / 2) is the same posterior: the same KL to float tolerance while
    sigma^2 >> 1e-10; below that the floor log(sigma^2 + eps) lowers it by exactly
    0.5 log(1 + eps / sigma^2) per latent."""
    mu, logvar = 2 * jax.random.normal(jax.random.key(0), (2, 64, 8))
    sigma = jnp.exp(0.5 * logvar)
    np.testing.assert_allclose(
        bottlenecks.gaussian_kl_sigma(mu, sigma), bottlenecks.gaussian_kl(mu, logvar), rtol=1e-5
    )
    np.testing.assert_allclose(  # the sign of sigma is the sample's, not the posterior's
        bottlenecks.gaussian_kl_sigma(mu, -sigma), bottlenecks.gaussian_kl(mu, logvar), rtol=1e-5
    )
    tiny_logvar = jnp.log(jnp.array([1e-12, 1e-10, 1e-8]))  # float64 maths below, float32 KL
    tiny_kl = bottlenecks.gaussian_kl_sigma(jnp.zeros(3)[:, None], jnp.exp(0.5 * tiny_logvar)[:, None])
    floor = 0.5 * np.log1p(1e-10 / np.array([1e-12, 1e-10, 1e-8]))
    true_kl = bottlenecks.gaussian_kl(jnp.zeros(3)[:, None], tiny_logvar[:, None])
    np.testing.assert_allclose(true_kl - tiny_kl, floor, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ["vae", "conv_vae"])
def test_sigma_and_logvar_heads_give_one_loss_at_one_posterior(tiny, name):
    """Both heads zeroed but for their biases, log-variance b and sigma exp(b / 2): the same
    posterior, so the same sample (one noise key), reconstruction and KL."""
    logvar_cfg = tiny(name)
    sigma_cfg = tiny(name, model__posterior_scale="sigma")
    x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
    logvar_model, sigma_model = factory.build(logvar_cfg.model), factory.build(sigma_cfg.model)
    params = logvar_model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    params = params["params"]
    bias = jax.random.normal(jax.random.key(3), (logvar_cfg.model.latent_dim,))
    head = {"kernel": jnp.zeros_like(params["logvar_head"]["kernel"]), "bias": bias}
    sigma_params = {k: v for k, v in params.items() if k != "logvar_head"}
    sigma_params["sigma_head"] = {**head, "bias": jnp.exp(0.5 * bias)}
    params = {**params, "logvar_head": head}
    rng = jax.random.key(4)
    _, by_logvar = autoencoding.make_loss_fn(logvar_model, logvar_cfg.loss)(params, x, rng, True)
    _, by_sigma = autoencoding.make_loss_fn(sigma_model, sigma_cfg.loss)(sigma_params, x, rng, True)
    chex.assert_trees_all_close(by_sigma, by_logvar, rtol=1e-5)
    _, aux = sigma_model.apply({"params": sigma_params}, x, rngs={"noise": rng})
    assert set(aux) == {"mu", "logvar", "z", "log_q", "log_prior", "terms", "stats"}


def test_unknown_posterior_scale_is_refused(tiny):
    with pytest.raises(ValueError, match="unknown model.posterior_scale 'std'"):
        factory.build(tiny("vae", model__posterior_scale="std").model)


def test_vae_loss_is_reconstruction_plus_kl(tiny):
    config = tiny("vae")
    model = factory.build(config.model)
    x = jax.random.uniform(jax.random.key(2), (6, 28, 28, 1))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    loss, metrics = autoencoding.make_loss_fn(model, config.loss)(params, x, jax.random.key(5), True)
    assert metrics["kl"] >= 0
    np.testing.assert_allclose(loss, metrics["recon"] + metrics["kl"], rtol=1e-6)
    # Summed over 784 pixels, an untrained decoder pays about log(2) nats per pixel.
    assert 784 * 0.5 < metrics["recon"] < 784 * 1.0


def test_unknown_likelihood_is_refused(tiny):
    config = tiny("mlp", loss__likelihood="poisson")
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'.*bernoulli"):
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)


def test_rng_streams_are_distinct_and_a_function_of_the_step_key():
    def streams(seed):
        keys = autoencoding.rng_streams(jax.random.key(seed))
        return {name: np.asarray(jax.random.key_data(key)) for name, key in keys.items()}

    first = streams(0)
    assert set(first) == {"noise", "corruption"}
    assert not np.array_equal(first["noise"], first["corruption"])
    chex.assert_trees_all_equal(first, streams(0))


@pytest.mark.slow
def test_learned_variance_is_a_parameter_the_gaussian_loss_trains(tiny):
    config = tiny("vae", loss__likelihood="gaussian")
    config.model.learned_variance = True
    model = factory.build(config.model)
    x = jax.random.uniform(jax.random.key(2), (6, 28, 28, 1))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, jax.random.key(5), True)
    logits, _ = model.apply({"params": params}, x, rngs={"noise": autoencoding.rng_streams(jax.random.key(5))["noise"]})
    expected = -jax.scipy.stats.norm.logpdf(x, logits, 1.0).sum() / 6  # obs_logvar starts at 0
    np.testing.assert_allclose(metrics["recon"], expected, rtol=1e-5)
    assert grads["obs_logvar"] != 0
    config.loss.variance = 0.5
    with pytest.raises(ValueError, match="learns its variance"):
        autoencoding.make_loss_fn(model, config.loss)


def test_kl_warmup_weighs_the_kl_by_the_step(tiny):
    config = tiny("vae", loss__kl_weight=2.0)
    config.loss.kl_warmup_steps = 10
    model = factory.build(config.model)
    x = jax.random.uniform(jax.random.key(2), (6, 28, 28, 1))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    for step, weight in [(0, 0.0), (5, 1.0), (10, 2.0), (30, 2.0), (None, 2.0)]:
        loss, m = loss_fn(params, x, jax.random.key(5), True, step=step)
        np.testing.assert_allclose(loss, m["recon"] + weight * m["kl"], rtol=1e-6)


def test_iwae_loss_is_the_negative_bound_over_k_samples(tiny):
    config = tiny("iwae", loss__iwae_samples=5)
    model = factory.build(config.model)
    x = jnp.round(jax.random.uniform(jax.random.key(2), (6, 28, 28, 1)))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    loss, metrics = autoencoding.make_loss_fn(model, config.loss)(params, x, jax.random.key(5), True)
    noise = autoencoding.rng_streams(jax.random.key(5))["noise"]
    logits, aux = model.apply({"params": params}, x, rngs={"noise": noise}, samples=5)
    assert logits.shape == (5, 6, 28, 28, 1) and aux["z"].shape == (5, 6, 4)
    log_w = autoencoding.log_importance_weights(likelihoods.per_image(likelihoods.reconstruction(logits, x, "bernoulli")), aux)
    np.testing.assert_allclose(loss, -jnp.mean(jax.nn.logsumexp(log_w, 0) - jnp.log(5.0)), rtol=1e-6)
    # It is tighter than the ELBO the same samples give.
    assert loss < metrics["recon"] + metrics["kl"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss__likelihood": "gaussian", "loss__iwae_samples": 5}, "needs a density"),
        ({"loss__iwae_samples": 5, "loss__kl_weight": 0.5}, "kl_weight=1"),
        ({"loss__variance": 0.1}, "needs a gaussian likelihood"),
        ({"loss__iwae_groups": 4, "loss__kl_weight": 0.5}, "kl_weight=1"),
        ({"loss__ciwae_beta": 1.5}, r"ciwae_beta=1.5 weighs the ELBO: set it in \[0, 1\]"),
    ],
)
def test_inconsistent_vae_options_are_refused(tiny, overrides, message):
    config = tiny("iwae", **overrides)
    with pytest.raises(ValueError, match=message):
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)


@pytest.mark.parametrize(("groups", "beta"), [(3, 0.0), (1, 0.25), (3, 0.5)])
def test_miwae_and_ciwae_losses_are_their_bounds_of_the_same_samples(tiny, groups, beta):
    """k = 2 samples in M groups: MIWAE's loss is minus the mean over images of the mean of M
    IWAE bounds of 2; CIWAE's mixes in the ELBO estimate of all the samples by beta. Worked
    from the log weights of the model's own draws."""
    config = tiny("iwae", loss__iwae_samples=2, loss__iwae_groups=groups, loss__ciwae_beta=beta)
    model = factory.build(config.model)
    x = jnp.round(jax.random.uniform(jax.random.key(2), (6, 28, 28, 1)))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    loss, _ = autoencoding.make_loss_fn(model, config.loss)(params, x, jax.random.key(5), True)
    noise = autoencoding.rng_streams(jax.random.key(5))["noise"]
    logits, aux = model.apply({"params": params}, x, rngs={"noise": noise}, samples=2 * groups)
    nll = likelihoods.per_image(likelihoods.reconstruction(logits, x, "bernoulli"))
    log_w = np.asarray(autoencoding.log_importance_weights(nll, aux), np.float64)  # [2M, 6]
    bounds = [
        np.log(np.mean(np.exp(log_w[[m, m + groups]]), axis=0)) for m in range(groups)
    ]  # each group: samples m and m + M (the samples axis reshaped to [2, M, 6])
    want = beta * log_w.mean(axis=0) + (1 - beta) * np.mean(bounds, axis=0)
    np.testing.assert_allclose(loss, -np.mean(want), rtol=1e-5)


def test_piwae_trains_the_decoder_on_the_whole_bound_and_the_encoder_on_miwae(tiny):
    """PIWAE(3, 2) against IWAE with the same 6 draws and MIWAE(3, 2): its loss is IWAE's, the
    decoder's gradient IWAE's, every other parameter's (encoder, posterior heads) MIWAE's."""
    kw = {"loss__iwae_samples": 2, "loss__iwae_groups": 3}
    configs_ = {
        "piwae": tiny("iwae", loss__piwae=True, **kw),
        "miwae": tiny("iwae", **kw),
        "iwae": tiny("iwae", loss__iwae_samples=6),
    }
    model = factory.build(configs_["iwae"].model)
    x = jnp.round(jax.random.uniform(jax.random.key(2), (6, 28, 28, 1)))
    params = model.init({"params": jax.random.key(3), "noise": jax.random.key(4)}, x)["params"]
    got = {}
    for name, config in configs_.items():
        loss_fn = autoencoding.make_loss_fn(model, config.loss)
        got[name] = jax.value_and_grad(lambda p, f=loss_fn: f(p, x, jax.random.key(5), True)[0])(
            params
        )
    np.testing.assert_allclose(got["piwae"][0], got["iwae"][0], rtol=1e-6)
    assert set(params) > {"decoder"}
    for part, grad in got["piwae"][1].items():
        want = got["iwae" if part == "decoder" else "miwae"][1][part]
        chex.assert_trees_all_close(grad, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got["iwae"][1]["encoder"]["mlp"]["dense0"]["kernel"],
                           got["miwae"][1]["encoder"]["mlp"]["dense0"]["kernel"])  # fmt: skip
