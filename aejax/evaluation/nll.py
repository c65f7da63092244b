"""How well a trained VAE models its test set, measured as papers measure it (in nats).

- `elbo`: the evidence lower bound, its expectation over q(z|x) estimated with the same k
  samples as the likelihood (a sampled KL), so `-elbo >= nll` holds sample for sample.
- `nll`: minus the importance-sampled log-likelihood log (1/k) sum_i p(x, z_i) / q(z_i|x),
  with k = 5000 as in Burda et al. (2016); a stochastic upper bound on the true NLL that
  tightens as k grows. Samples are drawn in chunks and merged with `logsumexp`, all inside one
  compiled function per batch of images, so memory stays at one chunk and the host reads once.
- `active_units`: latents whose posterior mean varies across the data, Cov_x(E_q[z_u]) > 0.01
  (Burda et al.'s criterion); the others have collapsed to the prior.
"""


import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aejax import compiled
from aejax.data import binarize, sources
from aejax.data.dataset import as_float
from aejax.evaluation import inference
from aejax.models import factory
from aejax.objectives import autoencoding, likelihoods

ACTIVE_THRESHOLD = 0.01


def make_log_likelihood(model: nn.Module, loss_cfg: ml_collections.ConfigDict, chunk: int):
    """`log_likelihood(params, x_B, rng, samples) -> (log p_hat(x) [B], mean log w [B])`.

    `samples` must be a multiple of `chunk`; each chunk draws its own key, fold_in(rng, c).
    """
    if (
        loss_cfg.likelihood == "gaussian"
        and loss_cfg.variance is None
        and not model.capabilities.learned_variance
    ):
        raise ValueError("a log-likelihood needs a density: this gaussian loss is plain MSE")

    def chunk_log_weights(params, x, rng):
        logits, aux = model.apply({"params": params}, x, rngs={"noise": rng}, samples=chunk)
        obs_logvar = autoencoding.observation_logvar(loss_cfg, aux)
        nll_SxB = likelihoods.per_image(
            likelihoods.reconstruction(logits, x, loss_cfg.likelihood, obs_logvar)
        )
        return autoencoding.log_importance_weights(nll_SxB, aux)

    @compiled.jit(static_argnums=3)
    def log_likelihood(params, x, rng, samples):
        if samples % chunk:
            raise ValueError(f"samples={samples} must be a multiple of the chunk {chunk}")

        def one_chunk(c):
            log_w_SxB = chunk_log_weights(params, x, jax.random.fold_in(rng, c))
            return jax.nn.logsumexp(log_w_SxB, axis=0), jnp.sum(log_w_SxB, axis=0)

        lse_CxB, sums_CxB = jax.lax.map(one_chunk, jnp.arange(samples // chunk))
        log_px = jax.nn.logsumexp(lse_CxB, axis=0) - jnp.log(samples)
        return log_px, jnp.sum(sums_CxB, axis=0) / samples

    return log_likelihood


def active_units(model: nn.Module, params, images: jax.Array, batch_size: int = 1000) -> jax.Array:
    """The number of latents whose posterior mean has variance above 0.01 over `images`."""
    mu_NxK = inference.codes(model, params, images, batch_size)
    return jnp.sum(jnp.var(mu_NxK, axis=0) > ACTIVE_THRESHOLD)


def evaluate(
    model: nn.Module,
    params,
    images: jax.Array,
    rng: jax.Array,
    loss_cfg: ml_collections.ConfigDict,
    *,
    samples: int = 5000,
    chunk: int = 500,
    batch_size: int = 100,
) -> dict:
    """Test ELBO and NLL (nats per image, dataset means) and active units of a trained VAE."""
    chunk = min(chunk, samples)
    log_likelihood = make_log_likelihood(model, loss_cfg, chunk)
    log_px, elbo = [], []
    for i, start in enumerate(range(0, len(images), batch_size)):
        lp, el = log_likelihood(
            params, images[start : start + batch_size], jax.random.fold_in(rng, i), samples
        )
        log_px.append(lp)
        elbo.append(el)
    nll, elbo, units = jax.device_get(
        (
            -jnp.mean(jnp.concatenate(log_px)),
            jnp.mean(jnp.concatenate(elbo)),
            active_units(model, params, images),
        )
    )
    return {
        "elbo": float(elbo),
        "nll": float(nll),
        "active_units": int(units),
        "samples": samples,
        "images": len(images),
    }


def evaluate_test_set(
    config: ml_collections.ConfigDict, params, *, samples: int = 5000, images: int | None = None
) -> dict:
    """`evaluate` on the test set of `config.data` as training scored it (binarised likewise),
    its first `images` only if given; the estimate's noise comes from a fixed key."""
    test_x = sources.from_config(config.data, "test").images[:images]
    test_x = as_float(binarize.test_images(config.data, jax.device_put(test_x)))
    model = factory.build(config.model)
    return evaluate(model, params, test_x, jax.random.key(0), config.loss, samples=samples)
