"""Generative evaluation on a trained VAE: the IWAE bound tightens with k, the NLL estimate is
below the negative ELBO, the chunked estimate is the unchunked one, and active units count."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.data import binarize, sources
from aejax.evaluation import nll
from aejax.models import bottlenecks, factory
from aejax.objectives import autoencoding, likelihoods
from aejax.training import loop
from aejax.training.step import make_evaluate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The IWAE-paper VAE shrunk to 784-32-4, trained 4 epochs on binarised mnist5k."""
    config = load_config("iwae")
    config.model.encoder_widths, config.model.latent_dim = (32,), 4
    config.train.batch_size, config.train.epochs, config.train.chunk = 100, 4, 40
    state, _ = loop.train_and_evaluate(config, tmp_path_factory.mktemp("run"))
    test_x = binarize.test_images(config.data, jnp.asarray(sources.load("mnist5k", "test")[0][:300]))
    return config, factory.build(config.model), state.params, test_x


@functools.partial(jax.jit, static_argnums=(0, 4))
def _log_w(model, params, x, rng, k):
    logits, aux = model.apply({"params": params}, x, rngs={"noise": rng}, samples=k)
    nll_SxB = likelihoods.per_image(likelihoods.reconstruction(logits, x, "bernoulli"))
    return autoencoding.log_importance_weights(nll_SxB, aux)


@pytest.mark.slow
def test_iwae_bound_increases_with_k_on_a_trained_model(trained):
    _, model, params, x = trained
    bounds_KxN = jnp.stack(
        [autoencoding.iwae_bound(_log_w(model, params, x, jax.random.key(k), k)) for k in (1, 10, 100)]
    )
    # Each step up in k must gain more than 3 standard errors of its per-image gain.
    gains = np.diff(np.asarray(bounds_KxN), axis=0)
    stderr = gains.std(axis=1) / np.sqrt(gains.shape[1])
    assert np.all(gains.mean(axis=1) > 3 * stderr), (gains.mean(axis=1), stderr)


def test_iwae_at_k1_is_the_elbo_of_the_same_sample(trained):
    _, model, params, x = trained
    rng = jax.random.key(7)
    _, aux = model.apply({"params": params}, x, rngs={"noise": rng}, samples=1)
    bound = autoencoding.iwae_bound(_log_w(model, params, x, rng, 1))
    # The VAE's own forward pass with the same key draws the same z: its reconstruction term
    # plus the sampled KL, log q(z|x) - log p(z), is minus the k = 1 bound.
    vae_logits, vae_aux = model.apply({"params": params}, x, rngs={"noise": rng})
    np.testing.assert_array_equal(vae_aux["z"], aux["z"][0])
    recon = jnp.sum(likelihoods.reconstruction(vae_logits, x, "bernoulli"), axis=(1, 2, 3))
    std = jnp.exp(0.5 * vae_aux["logvar"])
    log_q = jax.scipy.stats.norm.logpdf(vae_aux["z"], vae_aux["mu"], std).sum(-1)
    log_p = jax.scipy.stats.norm.logpdf(vae_aux["z"]).sum(-1)
    np.testing.assert_allclose(bound, -(recon + log_q - log_p), rtol=1e-5)
    # Averaged over images, the sampled KL agrees with the closed form the loss uses.
    kl = bottlenecks.gaussian_kl(vae_aux["mu"], vae_aux["logvar"])
    np.testing.assert_allclose(jnp.mean(log_q - log_p), jnp.mean(kl), rtol=0.05)


def test_nll_estimate_is_finite_and_below_the_negative_elbo(trained):
    config, model, params, x = trained
    scores = nll.evaluate(
        model,
        params,
        x[:100],
        jax.random.key(0),
        config.loss,
        samples=200,
        chunk=50,
        batch_size=50,
    )
    loss_fn = autoencoding.make_loss_fn(model, config.loss)
    closed_form = make_evaluate(loss_fn, 100)(params, x[:100], jax.random.key(1))["loss"]
    assert np.isfinite(scores["nll"]) and scores["nll"] > 0
    assert scores["nll"] < -scores["elbo"] - 1.0, scores
    assert scores["nll"] < closed_form, (scores, closed_form)
    np.testing.assert_allclose(-scores["elbo"], closed_form, rtol=0.02)  # the same bound twice


def test_chunked_estimate_equals_one_logsumexp_over_all_samples(trained):
    config, model, params, x = trained
    x, rng = x[:20], jax.random.key(3)
    chunked, _ = nll.make_log_likelihood(model, config.loss, chunk=25)(params, x, rng, 100)
    log_w = jnp.concatenate(
        [_log_w(model, params, x, jax.random.fold_in(rng, c), 25) for c in range(4)]
    )
    np.testing.assert_allclose(chunked, jax.nn.logsumexp(log_w, axis=0) - jnp.log(100), rtol=1e-5)


def test_active_units_count_latents_whose_mean_varies(trained):
    _, model, params, x = trained
    assert nll.active_units(model, params, x) == 4
    head = params["mu_head"]
    silenced = {
        **params,
        "mu_head": {"kernel": head["kernel"].at[:, :3].set(0.0), "bias": head["bias"]},
    }
    assert nll.active_units(model, silenced, x) == 1


def test_mse_is_not_a_likelihood_to_estimate():
    config = load_config("vae")
    config.loss.likelihood = "gaussian"
    with pytest.raises(ValueError, match="needs a density"):
        nll.make_log_likelihood(factory.build(config.model), config.loss, chunk=10)
