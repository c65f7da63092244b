"""Objectives as pure functions of a model's outputs, and the factory that combines them.

Reconstruction terms work on decoder logits: a Bernoulli likelihood reads them through a
sigmoid (BCE, computed stably from logits), a gaussian reads them as the mean: with a variance
(`loss.variance`, or one the model learns) it is the negative log-density in nats, without one
the squared error (MSE, its special case up to scale and constant). The model's bottleneck adds
its own named terms (`aux["terms"]`, aejax/models/bottlenecks.py), each weighted by its loss field
(TERM_WEIGHTS): a gaussian posterior's KL to the standard normal prior by `kl_weight` (beta),
optionally warmed up linearly over `kl_warmup_steps`, which makes the objective the negative
ELBO at weight 1; a VQ code's commitment, an LFQ code's entropy terms, a WAE's MMD, an adversarial AE's terms, beta-TCVAE's
total correlation. With `iwae_samples` = k > 1 the objective is instead the negative
importance-weighted bound of Burda et al. (2016) with k posterior samples; with `iwae_groups`
= M > 1, MIWAE's mean of M such bounds, with `ciwae_beta` = beta > 0, CIWAE's
beta * ELBO + (1 - beta) * that bound, and with `piwae`, PIWAE's: the decoder learns from the
bound of all M x k samples, the encoder from MIWAE's ("Tighter Variational Bounds are Not
Necessarily Better", Rainforth et al., 2018).

The loss config may add a denoising criterion (`loss.corruption`: the model sees a corrupted
input, the target stays clean) and penalties (`loss.regularizers`); both are optional groups.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aejax.objectives import corruptions, likelihoods, regularizers


def log_importance_weights(nll_SxB: jax.Array, aux: dict) -> jax.Array:
    """log p(x|z) + log p(z) - log q(z|x) for each of S posterior samples of each image, given
    -log p(x|z) per sample, `nll_SxB`, and the bottleneck's log q(z|x) and log p(z) of each
    (`aux["log_q"]`, `aux["log_prior"]`): shape [S, B]. Their mean over S is an ELBO estimate
    with a sampled KL."""
    return aux["log_prior"] - aux["log_q"] - nll_SxB


def iwae_bound(log_w_SxB: jax.Array) -> jax.Array:
    """log (1/S) sum_s w_s per image, [B]: the ELBO's estimate at S = 1, tighter as S grows."""
    return jax.nn.logsumexp(log_w_SxB, axis=0) - jnp.log(log_w_SxB.shape[0])


def importance_weighted_objective(log_w_SxB: jax.Array, groups: int, beta: float) -> jax.Array:
    """Per image [B], of S = M x k samples' log weights: the mean of the IWAE bounds of `groups`
    (M) sets of k samples (MIWAE; M = 1: IWAE), mixed with the ELBO's estimate from the same
    samples by `beta` (CIWAE: beta * ELBO + (1 - beta) * bound)."""
    samples, images = log_w_SxB.shape
    bound_B = jnp.mean(iwae_bound(log_w_SxB.reshape(samples // groups, groups, images)), axis=0)
    if not beta:
        return bound_B
    return beta * jnp.mean(log_w_SxB, axis=0) + (1 - beta) * bound_B


def negative_bound(log_w_SxB, groups: int, beta: float, encoder_log_w_SxB=None) -> jax.Array:
    """The loss of an importance-weighted objective: minus its batch mean. With PIWAE's second
    pass (`encoder_log_w_SxB`: the same draws, the decoder held), the bound of all the samples,
    and MIWAE's over `groups` adding its gradient to the encoder and nothing to the value."""
    if encoder_log_w_SxB is None:
        return -jnp.mean(importance_weighted_objective(log_w_SxB, groups, beta))
    encoder_B = importance_weighted_objective(encoder_log_w_SxB, groups, 0.0)
    bound_B = importance_weighted_objective(log_w_SxB, 1, beta)
    return -jnp.mean(bound_B) - jnp.mean(encoder_B - jax.lax.stop_gradient(encoder_B))


def _log_weights(outputs: tuple, x: jax.Array, cfg: ml_collections.ConfigDict, obs_logvar):
    """`log_importance_weights` of a pass's (logits, aux), against the clean `x`."""
    logits, aux = outputs
    nll = likelihoods.reconstruction(logits, x, cfg.likelihood, obs_logvar)
    return log_importance_weights(likelihoods.per_image(nll), aux)


def _only_decoder_learns(params: dict, decoder: bool) -> dict:
    """`params` with gradients stopped at all but the decoder's (`decoder`) or at the decoder's."""
    if "decoder" not in params:
        raise ValueError(
            "PIWAE (loss.piwae) trains a decoder and an encoder apart: this model has no decoder"
        )
    sg = jax.lax.stop_gradient
    return {k: v if (k == "decoder") == decoder else sg(v) for k, v in params.items()}


def observation_logvar(cfg: ml_collections.ConfigDict, aux: dict):
    """The gaussian likelihood's log-variance: learned by the model, fixed by `loss.variance`,
    or None (squared error); None for a Bernoulli likelihood."""
    if cfg.likelihood != "gaussian":
        return None
    if "obs_logvar" in aux:
        return aux["obs_logvar"]
    return None if cfg.variance is None else jnp.log(cfg.variance)


def _check_options(model: nn.Module, cfg: ml_collections.ConfigDict) -> None:
    if cfg.likelihood not in likelihoods.LIKELIHOODS:
        raise ValueError(f"unknown likelihood {cfg.likelihood!r}; choose one of {likelihoods.LIKELIHOODS}")
    if cfg.reduction not in likelihoods.REDUCTIONS:
        raise ValueError(f"unknown reduction {cfg.reduction!r}; choose one of {likelihoods.REDUCTIONS}")
    variance, samples = cfg.variance, cfg.iwae_samples * cfg.get("iwae_groups", 1)
    capabilities = model.capabilities
    if variance is not None and (cfg.likelihood != "gaussian" or not variance > 0):
        raise ValueError(f"loss.variance={variance} needs a gaussian likelihood and a positive value")
    if variance is not None and capabilities.learned_variance:
        raise ValueError("the model learns its variance (model.learned_variance): drop loss.variance")
    if capabilities.learned_variance and cfg.likelihood != "gaussian":
        raise ValueError("model.learned_variance needs loss.likelihood='gaussian'")
    if samples < 1 or cfg.kl_warmup_steps < 0:
        raise ValueError("loss.iwae_samples must be at least 1 and loss.kl_warmup_steps at least 0")
    beta = cfg.get("ciwae_beta", 0.0)
    if not 0 <= beta <= 1:
        raise ValueError(f"loss.ciwae_beta={beta} weighs the ELBO: set it in [0, 1]")
    if samples > 1 and (cfg.reduction != "sum" or cfg.kl_weight != 1.0):
        raise ValueError("the IWAE bound (loss.iwae_samples > 1) needs reduction='sum', kl_weight=1")
    gaussian_mse = cfg.likelihood == "gaussian" and variance is None
    if samples > 1 and gaussian_mse and not capabilities.learned_variance:
        raise ValueError("the IWAE bound needs a density: set loss.variance or model.learned_variance")
    if samples > 1 and not capabilities.posterior_density:
        raise ValueError("the IWAE bound (loss.iwae_samples > 1) needs a gaussian bottleneck")
    potential = capabilities.potential_likelihood
    if potential not in (None, cfg.likelihood):
        raise ValueError(
            f"the HVAE's leapfrog steps climb model.likelihood={potential!r} but the loss is "
            f"loss.likelihood={cfg.likelihood!r}: set both to the same"
        )
    if potential and cfg.corruption.name != "none":
        raise ValueError(
            "the HVAE's leapfrog steps read the image the model sees as the one it rebuilds: "
            "a corrupted input (loss.corruption) would be the target; drop the corruption"
        )


# The loss field that weighs each bottleneck term; a term not named here has weight 1.
TERM_WEIGHTS = {
    "kl": "kl_weight",
    "commitment": "commitment_weight",
    "mmd": "mmd_weight",
    "adversarial": "adversarial_weight",
    "tc": "tc_weight",
    "entropy": "entropy_weight",
    "diversity": "diversity_weight",
    "l1": "sparsity_weight",  # a sparse autoencoder's penalties (aejax/models/sae.py)
    "l0": "sparsity_weight",
    "auxk": "auxk_weight",
}


def term_weight(cfg: ml_collections.ConfigDict, term: str, step) -> jax.Array | float:
    """The weight of bottleneck term `term` at training step `step`: its loss field's (1 if
    it has none), the KL's warmed up linearly over `kl_warmup_steps` (full without a step)."""
    value = cfg[TERM_WEIGHTS[term]] if term in TERM_WEIGHTS else 1.0
    if term != "kl" or step is None or cfg.kl_warmup_steps == 0:
        return value
    return value * jnp.minimum(1.0, step / cfg.kl_warmup_steps)


# (params, batch, rng, train, step=None) -> (loss, metrics); `step` drives schedules (KL warm-up).
LossFn = Callable[..., tuple[jax.Array, dict]]
RNG_STREAMS = ("noise", "corruption")  # the model's sampling noise; the input corruption


def rng_streams(rng: jax.Array) -> dict[str, jax.Array]:
    """The step's key split into one key per stream, so no two draws share randomness."""
    return {name: jax.random.fold_in(rng, i) for i, name in enumerate(RNG_STREAMS)}


def make_loss_fn(model: nn.Module, cfg: ml_collections.ConfigDict) -> LossFn:
    """Returns `loss_fn(params, x, rng, train, step=None) -> (loss, metrics)` for `model`.

    `metrics` holds batch means of each term ("recon", the bottleneck's terms such as "kl",
    one per regularizer, and their weighted sum "loss") and the bottleneck's logged stats, so
    logging and evaluation read the same names. `train` is a Python bool: the input is
    corrupted when it is True, or when `corruption.at_eval` is. `step` (the training step)
    sets the KL warm-up; without it the KL has its full weight.

    A model with state besides its parameters (an EMA codebook) is called with
    `collections=` (the train state's): the loss then returns `(loss, (metrics, collections))`,
    the collections updated when `train`.
    """
    _check_options(model, cfg)
    corrupt = corruptions.build(cfg.corruption)
    corrupt_at_eval = corrupt is not None and cfg.corruption.at_eval
    penalties = regularizers.build(cfg.regularizers, model, cfg.likelihood)
    groups, beta = cfg.get("iwae_groups", 1), cfg.get("ciwae_beta", 0.0)  # older configs lack
    piwae = cfg.get("piwae", False)  # these three fields
    samples = cfg.iwae_samples * groups
    draws = {"samples": samples} if samples > 1 else {}  # the model's [S, B, ...] outputs

    def loss_fn(params, x, rng, train, step=None, collections=None):
        rngs = rng_streams(rng)
        x_in = corrupt(x, rngs["corruption"]) if corrupt and (train or corrupt_at_eval) else x
        mutable = list(collections) if collections and train else False

        def forward(params):
            variables = {"params": params, **(collections or {})}
            return model.apply(variables, x_in, train=train, rngs={"noise": rngs["noise"]},
                               mutable=mutable, **draws)  # fmt: skip

        # PIWAE: this pass's gradient reaches the decoder alone, a second pass's the rest.
        out = forward(_only_decoder_learns(params, True) if piwae else params)
        (logits, aux), updated = out if mutable else (out, collections)
        obs_logvar = observation_logvar(cfg, aux)
        per_pixel = likelihoods.reconstruction(logits, x, cfg.likelihood, obs_logvar)  # against the clean x
        # One reduction over batch and pixels: XLA:CPU evaluates the exp and log1p of a per-row
        # reduction one element at a time, which made the MLP step 5x slower.
        count = (x.shape[0] if cfg.reduction == "sum" else x.size) * samples
        metrics = {"recon": jnp.sum(per_pixel) / count}
        loss = metrics["recon"]
        for name, value in aux["terms"].items():
            metrics[name] = value
            loss = loss + term_weight(cfg, name, step) * value
        metrics.update(aux["stats"])
        if samples > 1:
            log_w_SxB = log_importance_weights(likelihoods.per_image(per_pixel), aux)
            encoder_log_w_SxB = None
            if piwae and train:  # the same draws, the decoder held
                out_e = forward(_only_decoder_learns(params, False))
                encoder_log_w_SxB = _log_weights(out_e[0] if mutable else out_e, x, cfg, obs_logvar)
            metrics["iwae"] = loss = negative_bound(log_w_SxB, groups, beta, encoder_log_w_SxB)
        for name, (weight, term) in penalties.items():
            metrics[name] = term(params, aux)
            loss = loss + weight * metrics[name]
        metrics["loss"] = loss
        return (loss, metrics) if collections is None else (loss, (metrics, dict(updated)))

    return loss_fn
