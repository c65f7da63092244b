"""Bottlenecks: what lies between an encoder's features and the decoder, and the loss it owes.

A bottleneck maps the encoder's features `h` (a vector [B, D] or a map [B, H, W, C]) to the
code the decoder reads, and returns with it `aux`: `aux["terms"]`, its named loss terms (batch
means, which the loss weighs by name and adds), `aux["stats"]`, numbers only logged, and what
other parts read ("code"; a gaussian's "mu", "logvar" and "z"). Its `encode` gives an
`Encoding`, the code without noise or training-time sparsity. The kinds:

- `Deterministic`: the features are the code; optionally matched to the prior N(0, I) by an
  MMD (the WAE-MMD of Tolstikhin et al., 2018) or by a discriminator on codes (the adversarial
  AE of Makhzani et al., 2016);
- `Gaussian`: a diagonal gaussian posterior, sampled by reparameterisation, its KL to N(0, I);
  optionally a flow on its draw or a VampPrior (`posteriors.py`), the total correlation of
  beta-TCVAE or FactorVAE, InfoVAE's MMD;
- `VectorQuantizer`: nearest codebook vectors with a straight-through gradient (van den Oord
  et al., 2017), the codebook kept by its loss term or by moving averages (EMA);
- `WinnerTakeAll`: spatial and lifetime sparsity (Makhzani and Frey, 2015);
- the quantisers of `quantisers.py`: finite scalar (FSQ), residual (RVQ), lookup-free (LFQ).

Each also declares what its codes allow (`Bottleneck`: a N(0, I) prior to sample, a posterior
density, codebook indices), from which a model's `Capabilities` follow.
"""

import math
from collections.abc import Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from aejax.models import codebooks, posteriors
from aejax.models.codebooks import nearest

SIGMA_EPS = 1e-10  # log(sigma^2 + eps): the sigma head's floor, as Geron's Hands-On ML has it
POSTERIOR_SCALES = ("logvar", "sigma")  # what the gaussian's second head outputs
PRIOR_MATCHES = ("none", "mmd", "adversarial")  # how a deterministic code meets N(0, I)
MMD_KERNELS = ("imq", "rbf")
TC_ESTIMATORS = ("minibatch", "discriminator")  # beta-TCVAE's, FactorVAE's
EMA_COLLECTION = "vq_ema"  # the EMA codebook's running counts and sums

# What a bottleneck needs to learn, whichever config it joins: choosing it by an override
# (`aejax.configs.override`, --config.model.bottleneck) sets these fields too, unless the same
# override sets them, since a config's values suit its own bottleneck. A VQ code needs the
# likelihood in nats per image (a per-pixel mean is swamped by the per-image VQ terms) and a
# linear last encoder layer (a ReLU leaves the codes one orthant). `conv` with a VQ bottleneck,
# mnist5k, 3 epochs: perplexity 1.0 with conv's mean and ReLU, 1.6 with sum alone, 16.7 with
# both; its commitment stays base()'s 0.25 (vqvae's 1.0 gave 1.9). A gaussian's KL, in nats
# per image, needs the likelihood in nats per image too: beside a per-pixel mean it wins, and
# the posterior collapses onto the prior (`conv` with a gaussian, mnist5k, 2 epochs: KL 0.0007
# nats, every digit decoded alike).
# The quantisers of quantisers.py likewise: rvq as vq; fsq a linear code (a ReLU leaves the
# levels below 0 unused) and no reduction, having no terms; lfq as vq, and vectors of 4 bits,
# which divide the codes vq's 4 does (vqvae's 16 would enumerate 65,536 entries).
DEFAULTS = {
    "vq": {"loss.reduction": "sum", "model.code_activation": "linear"},
    "rvq": {"loss.reduction": "sum", "model.code_activation": "linear"},
    "fsq": {"model.code_activation": "linear"},
    "lfq": {"loss.reduction": "sum", "model.code_activation": "linear", "model.code_dim": 4},
    "gaussian": {"loss.reduction": "sum"},
}
COLLAPSED_PERPLEXITY = 2.0  # a codebook used as if by fewer than two entries has collapsed


@struct.dataclass
class Encoding:
    """What `encode` gives: the code the decoder reads without noise, and what else is known."""

    code: jax.Array  # an AE's code, a gaussian's posterior mean, the quantised vectors
    logvar: jax.Array | None = None  # a gaussian posterior's log-variance
    indices: jax.Array | None = None  # a vector-quantised code's codebook entries [B, N]


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) in closed form, summed over latents: shape [B]."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mu) - 1.0 - logvar, axis=-1)


def gaussian_kl_sigma(mu: jax.Array, sigma: jax.Array, eps: float = SIGMA_EPS) -> jax.Array:
    """KL(N(mu, sigma^2) || N(0, I)) as Hands-On ML's sigma head computes it, its log floored:
    0.5 sum(sigma^2 + mu^2 - 1 - log(sigma^2 + eps)), shape [B]. Below the true KL by at most
    0.5 log(1 + eps / sigma^2) per latent."""
    variance = jnp.square(sigma)
    return 0.5 * jnp.sum(variance + jnp.square(mu) - 1.0 - jnp.log(variance + eps), axis=-1)


def total_correlation(z_BxK, mu_BxK, logvar_BxK, dataset_size: int) -> jax.Array:
    """TC = E[log q(z) - sum_k log q(z_k)] by minibatch-weighted sampling (Chen et al., 2018):
    q(z_i) ~ sum_j q(z_i | x_j) / (N M) over the batch's M posteriors, N the dataset's size."""
    log_q_BxBxK = jax.scipy.stats.norm.logpdf(
        z_BxK[:, None], mu_BxK[None], jnp.exp(0.5 * logvar_BxK)[None]
    )
    log_nm = jnp.log(dataset_size * z_BxK.shape[0])
    log_qz_B = jax.nn.logsumexp(jnp.sum(log_q_BxBxK, axis=-1), axis=1) - log_nm
    log_marginals_B = jnp.sum(jax.nn.logsumexp(log_q_BxBxK, axis=1) - log_nm, axis=-1)
    return jnp.mean(log_qz_B - log_marginals_B)


def mmd(x_NxK: jax.Array, y_MxK: jax.Array, kernel: str) -> jax.Array:
    """The unbiased estimate of MMD^2 between samples x and y, with the kernel of WAE's paper
    for a N(0, I) prior: C / (C + |a - b|^2) ("imq") or exp(-|a - b|^2 / C) ("rbf"), C = 2K."""
    scale = 2.0 * x_NxK.shape[-1]

    def gram(a, b):
        d2 = jnp.sum(jnp.square(a[:, None] - b[None]), axis=-1)
        return scale / (scale + d2) if kernel == "imq" else jnp.exp(-d2 / scale)

    def mean_off_diagonal(k_NxN):
        n = k_NxN.shape[0]
        return (jnp.sum(k_NxN) - jnp.trace(k_NxN)) / (n * (n - 1))

    xy = jnp.mean(gram(x_NxK, y_MxK))
    return mean_off_diagonal(gram(x_NxK, x_NxK)) + mean_off_diagonal(gram(y_MxK, y_MxK)) - 2 * xy


def straight_through(h_NxD: jax.Array, q_NxD: jax.Array) -> jax.Array:
    """q_NxD, through which the gradient reaches h unchanged (z = h + sg(q - h))."""
    return h_NxD + jax.lax.stop_gradient(q_NxD - h_NxD)


def perplexity(usage_K: jax.Array) -> jax.Array:
    """exp of the entropy of a codebook's usage (frequencies summing to 1): the number of
    entries that, used equally, would have its entropy."""
    return jnp.exp(-jnp.sum(usage_K * jnp.log(usage_K + 1e-10)))


class Discriminator(nn.Module):
    """An MLP giving a logit, prior sample versus code; `frozen` stops its parameters'
    gradient, so the autoencoder's term to fool it trains the encoder alone."""

    widths: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, z_BxK: jax.Array, frozen: bool) -> jax.Array:
        h = z_BxK
        for i, width in enumerate((*self.widths, 1)):
            kernel = self.param(f"kernel{i}", nn.initializers.lecun_normal(), (h.shape[-1], width))
            bias = self.param(f"bias{i}", nn.initializers.zeros, (width,))
            if frozen:
                kernel, bias = jax.lax.stop_gradient((kernel, bias))
            h = h @ kernel + bias
            h = nn.relu(h) if i < len(self.widths) else h
        return h[:, 0]


class Bottleneck(nn.Module):
    """What a bottleneck declares about its codes, from which the `Autoencoder` holding it
    derives its `Capabilities`; each kind overrides what differs from these."""

    normal_prior: ClassVar[bool] = False  # codes follow N(0, I): its draws decode to samples
    drawn_prior: ClassVar[bool] = False  # it learned a prior it draws codes from (`prior_draws`)
    posterior_density: ClassVar[bool] = False  # `samples` draws per image, q(z|x) in aux
    indexed_codes: ClassVar[bool] = False  # codes are codebook indices (`Encoding.indices`)
    passes_features: ClassVar[bool] = False  # the code is the encoder's features as they are
    dense_heads: ClassVar[bool] = False  # dense heads of its own read the flattened features:
    # the encoder's last layer is then a hidden one, and the code a vector whatever the encoder

    def code_units(self, feature_units: int | None) -> int | None:
        """A vector code's width, given the encoder's (None: a map)."""
        return feature_units


class Deterministic(Bottleneck):
    """The features are the code; `prior_match` adds terms that pull the codes' distribution
    towards N(0, I): "mmd" (weighted by loss.mmd_weight) or "adversarial": a discriminator's
    logistic loss "discriminator" (its parameters only) and the encoder's "adversarial"."""

    prior_match: str = "none"  # one of PRIOR_MATCHES
    mmd_kernel: str = "imq"  # one of MMD_KERNELS
    discriminator_widths: Sequence[int] = (64, 64)
    passes_features: ClassVar[bool] = True

    @property
    def normal_prior(self) -> bool:
        """Codes matched to N(0, I) follow it: a WAE's and an adversarial AE's."""
        return self.prior_match != "none"

    def setup(self):
        if self.prior_match == "adversarial":
            self.discriminator = Discriminator(self.discriminator_widths)

    def encode(self, h: jax.Array) -> Encoding:
        return Encoding(code=h)

    def __call__(self, h: jax.Array, *, train: bool = False, samples: int | None = None):
        del train
        no_samples(samples)
        terms = {}
        if self.prior_match != "none":
            code_BxK = h.reshape(h.shape[0], -1)
            prior_BxK = jax.random.normal(self.make_rng("noise"), code_BxK.shape, h.dtype)
            if self.prior_match == "mmd":
                terms["mmd"] = mmd(code_BxK, prior_BxK, self.mmd_kernel)
            else:  # -log D(prior) - log(1 - D(code)); the encoder's: -log D(code)
                real = self.discriminator(prior_BxK, frozen=False)
                fake = self.discriminator(jax.lax.stop_gradient(code_BxK), frozen=False)
                terms["discriminator"] = jnp.mean(nn.softplus(-real) + nn.softplus(fake))
                terms["adversarial"] = jnp.mean(
                    nn.softplus(-self.discriminator(code_BxK, frozen=True))
                )
        return h, {"code": h, "terms": terms, "stats": {}}


class Gaussian(Bottleneck):
    """A diagonal gaussian posterior from two dense heads on the flattened features: the mean
    and, by `posterior_scale`, the log-variance (positive variance without a constraint) or
    the standard deviation itself (as in Geron's "Hands-On Machine Learning with Scikit-Learn
    and TensorFlow", ch. 15, whose KL reads log(sigma^2 + 1e-10)).

    The decoder always sees a sample, so an evaluation's loss is an unbiased single-sample
    estimate. `samples` draws that many per image: `z` is then [samples, B, K] (IWAE); `aux`
    gives each draw's log q(z|x) and log p(z) ("log_q", "log_prior"), which importance
    sampling reads. Options (`posteriors.py`): a `flow` of `flow_layers` steps on the draw
    (planar, IAF), and the VampPrior (`prior="vamp"`: the features of the pseudo-inputs come
    as `prior_features`); with either, the KL is the single draw's log q(z|x) - log p(z).
    Terms past the KL: "tc", the total correlation of the codes, estimated by minibatch-weighted
    sampling (beta-TCVAE, Chen et al., 2018) or by a discriminator telling codes from codes
    whose latents were shuffled across the batch ("Disentangling by Factorising", Kim and Mnih,
    2018: FactorVAE; the discriminator's own term "discriminator"); "mmd", the MMD between the
    batch's draws and as many prior draws, which InfoVAE adds ("InfoVAE: Balancing Learning and
    Inference in Variational Autoencoders", Zhao et al., 2019).
    """

    latent_dim: int
    posterior_scale: str = "logvar"  # one of POSTERIOR_SCALES
    total_correlation: bool = False
    dataset_size: int | None = None  # N of the total correlation's estimator
    mmd_kernel: str | None = None  # one of MMD_KERNELS: InfoVAE's term
    tc_estimator: str = "minibatch"  # one of TC_ESTIMATORS
    discriminator_widths: Sequence[int] = (1000, 1000)  # FactorVAE's
    flow: str = "none"  # one of posteriors.FLOWS
    flow_layers: int = 0
    prior: str = "normal"  # one of posteriors.PRIORS
    posterior_density: ClassVar[bool] = True
    dense_heads: ClassVar[bool] = True

    @property
    def normal_prior(self) -> bool:
        """The KL pulls the posteriors to N(0, I), unless the prior is a VampPrior."""
        return self.prior == "normal"

    @property
    def drawn_prior(self) -> bool:
        return self.prior == "vamp"

    def code_units(self, feature_units: int | None) -> int:
        return self.latent_dim

    def setup(self):
        self.mu_head = nn.Dense(self.latent_dim)
        if self.posterior_scale == "logvar":
            self.logvar_head = nn.Dense(self.latent_dim)
        else:
            self.sigma_head = nn.Dense(self.latent_dim)
        if self.flow != "none":
            self.flow_steps = posteriors.Flow(self.flow, self.flow_layers)
        if self.total_correlation and self.tc_estimator == "discriminator":
            self.discriminator = Discriminator(self.discriminator_widths)

    def _posterior(self, h: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The mean, the sample's scale and the log-variance."""
        h_BxD = h.reshape(h.shape[0], -1)
        mu = self.mu_head(h_BxD)
        if self.posterior_scale == "sigma":
            sigma = self.sigma_head(h_BxD)
            return mu, sigma, jnp.log(jnp.square(sigma) + SIGMA_EPS)
        logvar = self.logvar_head(h_BxD)
        return mu, jnp.exp(0.5 * logvar), logvar

    def _flowed(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.flow == "none":
            return z, jnp.zeros(z.shape[:-1], z.dtype)
        return self.flow_steps(z)

    def encode(self, h: jax.Array) -> Encoding:
        mu, _, logvar = self._posterior(h)
        return Encoding(code=self._flowed(mu)[0], logvar=logvar)

    def prior_draws(self, prior_features: jax.Array, n: int) -> jax.Array:
        """`n` codes of the VampPrior: each a draw of a pseudo-input's posterior, picked
        uniformly; `prior_features`, the encoder's features of the pseudo-inputs."""
        mu_CxK, _, logvar_CxK = self._posterior(prior_features)
        pick, draw = jax.random.split(self.make_rng("noise"))
        c_N = jax.random.randint(pick, (n,), 0, mu_CxK.shape[0])
        eps_NxK = jax.random.normal(draw, (n, self.latent_dim), mu_CxK.dtype)
        return mu_CxK[c_N] + jnp.exp(0.5 * logvar_CxK[c_N]) * eps_NxK

    def log_prior(self, z: jax.Array, prior_features: jax.Array | None) -> jax.Array:
        """log p(z) of codes [..., K]; a VampPrior's reads its pseudo-inputs' features."""
        if self.prior == "normal":
            return posteriors.standard_log_density(z)
        mu_CxK, _, logvar_CxK = self._posterior(prior_features)
        return posteriors.mixture_log_density(z, mu_CxK, logvar_CxK)

    def __call__(
        self,
        h: jax.Array,
        *,
        train: bool = False,
        samples: int | None = None,
        prior_features: jax.Array | None = None,
    ):
        del train
        mu, std, logvar = self._posterior(h)
        shape = mu.shape if samples is None else (samples, *mu.shape)
        z0 = mu + std * jax.random.normal(self.make_rng("noise"), shape, mu.dtype)
        z, log_det = self._flowed(z0)
        log_q = posteriors.diagonal_log_density(z0, mu, logvar) - log_det
        log_prior = self.log_prior(z, prior_features)
        if self.flow != "none" or self.prior != "normal":  # no closed form: the draw's
            kl = log_q - log_prior if samples is None else log_q[0] - log_prior[0]
        elif self.posterior_scale == "sigma":  # the KL reads sigma itself, as Hands-On ML's does
            kl = gaussian_kl_sigma(mu, std)
        else:
            kl = gaussian_kl(mu, logvar)
        z_BxK = z if samples is None else z[0]
        terms = {"kl": jnp.mean(kl), **self._code_terms(z_BxK, mu, logvar)}
        aux = {"mu": mu, "logvar": logvar, "z": z, "log_q": log_q, "log_prior": log_prior}
        return z, {**aux, "terms": terms, "stats": {}}

    def _code_terms(self, z_BxK: jax.Array, mu: jax.Array, logvar: jax.Array) -> dict:
        """The terms on the batch's codes past the KL: "tc" (and "discriminator"), "mmd"."""
        terms = {}
        if self.total_correlation and self.tc_estimator == "discriminator":
            sg = jax.lax.stop_gradient
            shuffled_BxK = shuffled_latents(self.make_rng("noise"), sg(z_BxK))
            joint = self.discriminator(sg(z_BxK), frozen=False)
            product = self.discriminator(shuffled_BxK, frozen=False)
            terms["discriminator"] = jnp.mean(nn.softplus(-joint) + nn.softplus(product))
            # log D / (1 - D), D the chance that a code is the joint's: the TC's estimate
            terms["tc"] = jnp.mean(self.discriminator(z_BxK, frozen=True))
        elif self.total_correlation:
            if self.dataset_size is None:
                raise ValueError(
                    "the total correlation's estimator needs model.dataset_size: train through "
                    "train.train_and_evaluate, which sets it from the data, or set it"
                )
            terms["tc"] = total_correlation(z_BxK, mu, logvar, self.dataset_size)
        if self.mmd_kernel is not None:
            prior_BxK = jax.random.normal(self.make_rng("noise"), z_BxK.shape, z_BxK.dtype)
            terms["mmd"] = mmd(z_BxK, prior_BxK, self.mmd_kernel)
        return terms


def shuffled_latents(rng: jax.Array, z_BxK: jax.Array) -> jax.Array:
    """Each latent permuted across the batch on its own: draws of the product of the codes'
    marginals (FactorVAE's permute_dims)."""
    keys = jax.random.split(rng, z_BxK.shape[1])
    return jax.vmap(lambda key, column: jax.random.permutation(key, column), (0, 1), 1)(keys, z_BxK)


class VectorQuantizer(Bottleneck):
    """The code cut into vectors of `code_dim` along its last axis, each replaced by its nearest
    codebook vector; gradients pass straight through to the encoder (z = h + sg(q - h)), or by
    the rotation trick (`rotation`, `codebooks.rotation_trick`).

    Terms, per image (summed over its vectors): "commitment" |h - sg(q)|^2 (weighted by
    loss.commitment_weight) and "codebook". The codebook is the parameter `codebook`
    [num_codes, code_dim]. Kept by loss ("loss"), the term is |sg(h) - q|^2; kept by EMA
    (`ema_decay` set), running counts N_k and sums m_k of the vectors assigned to each entry
    live in the "vq_ema" collection, and the term is
    0.5 sum_k |e_k - sg(m_k / N_k)|^2, whose gradient e - m / N the optimiser applies with
    plain SGD at rate 1 (`models.assigned_groups`): the codebook becomes m / N each step.
    With `dead_code_steps` (an EMA codebook), an entry no vector chose for that many training
    steps restarts at a vector of the batch: its sum becomes that vector and its count 1.
    With `cosine`, vectors and entries are compared and decoded as unit vectors.
    The codebook's perplexity (exp of its entries' entropy in the batch) is logged.
    """

    num_codes: int = 512
    code_dim: int = 8
    ema_decay: float | None = None  # None: the codebook learns from its loss term
    ema_epsilon: float = 1e-5  # Laplace smoothing of the counts: no entry divides by zero
    cosine: bool = False
    rotation: bool = False
    dead_code_steps: int = 0  # 0: entries are never restarted
    indexed_codes: ClassVar[bool] = True

    def setup(self):
        init = nn.initializers.variance_scaling(1.0, "fan_out", "uniform")
        self.codebook = self.param("codebook", init, (self.num_codes, self.code_dim))
        if self.ema_decay is not None and self.is_mutable_collection(EMA_COLLECTION):
            # Counts of 1 and sums equal to the codebook: m / N starts at the codebook.
            self.counts = self.variable(EMA_COLLECTION, "counts", jnp.ones, (self.num_codes,))
            self.sums = self.variable(EMA_COLLECTION, "sums", lambda: self.codebook)
            if self.dead_code_steps:  # steps since each entry was last chosen
                self.unused = self.variable(
                    EMA_COLLECTION, "unused", jnp.zeros, (self.num_codes,), jnp.int32
                )

    def entries(self) -> jax.Array:
        """The codebook as vectors are compared with it and decoded from it."""
        return codebooks.normalised(self.codebook) if self.cosine else self.codebook

    def _quantise(self, h: jax.Array):
        if h.shape[-1] % self.code_dim:
            raise ValueError(
                f"the encoder's last axis ({h.shape[-1]}) is not a multiple of model.code_dim="
                f"{self.code_dim}: the code is cut into vectors of code_dim along it"
            )
        vectors_NxD = h.reshape(-1, self.code_dim)
        if self.cosine:
            vectors_NxD = codebooks.normalised(vectors_NxD)
        entries_KxD = self.entries()
        indices_N = nearest(vectors_NxD, entries_KxD)
        return vectors_NxD, indices_N, entries_KxD[indices_N]

    def vectors(self, indices: jax.Array) -> jax.Array:
        """The codebook vectors of `indices` [..., code_dim]."""
        return self.entries()[indices]

    def encode(self, h: jax.Array) -> Encoding:
        _, indices_N, quantised_NxD = self._quantise(h)
        return Encoding(
            code=quantised_NxD.reshape(h.shape), indices=indices_N.reshape(h.shape[0], -1)
        )

    def _ema_target(self, vectors_NxD, onehot_NxK, update: bool) -> jax.Array:
        """m / N after this batch's update (when `update`), the counts smoothed."""
        counts, sums = self.counts, self.sums
        if update:
            decay, chosen_K = self.ema_decay, jnp.sum(onehot_NxK, axis=0)
            counts.value = decay * counts.value + (1 - decay) * chosen_K
            sums.value = decay * sums.value + (1 - decay) * onehot_NxK.T @ vectors_NxD
            if self.dead_code_steps:
                self._restart_dead(vectors_NxD, chosen_K)
        n = jnp.sum(counts.value)
        smoothed_K = (counts.value + self.ema_epsilon) / (n + self.num_codes * self.ema_epsilon) * n
        return sums.value / smoothed_K[:, None]

    def _restart_dead(self, vectors_NxD, chosen_K) -> None:
        unused_K = jnp.where(chosen_K > 0, 0, self.unused.value + 1)
        dead_K, new_KxD = codebooks.restarted(
            self.make_rng("noise"), unused_K, vectors_NxD, self.dead_code_steps
        )
        self.counts.value = jnp.where(dead_K, 1.0, self.counts.value)
        self.sums.value = jnp.where(dead_K[:, None], new_KxD, self.sums.value)
        self.unused.value = jnp.where(dead_K, 0, unused_K)

    def __call__(self, h: jax.Array, *, train: bool = False, samples: int | None = None):
        no_samples(samples)
        vectors_NxD, indices_N, quantised_NxD = self._quantise(h)
        sg = jax.lax.stop_gradient
        images = h.shape[0]  # per image, summed over its vectors, as the KL of a gaussian is
        terms = {"commitment": jnp.sum(jnp.square(vectors_NxD - sg(quantised_NxD))) / images}
        onehot_NxK = jax.nn.one_hot(indices_N, self.num_codes, dtype=h.dtype)
        if self.ema_decay is None:
            terms["codebook"] = jnp.sum(jnp.square(sg(vectors_NxD) - quantised_NxD)) / images
        elif self.is_mutable_collection(EMA_COLLECTION):  # training, or init
            update = train and not self.is_initializing()
            target_KxD = sg(self._ema_target(sg(vectors_NxD), onehot_NxK, update))
            terms["codebook"] = 0.5 * jnp.sum(jnp.square(self.codebook - target_KxD))
        past = codebooks.rotation_trick if self.rotation else straight_through
        z = past(vectors_NxD, quantised_NxD).reshape(h.shape)
        stats = {"perplexity": perplexity(jnp.mean(onehot_NxK, axis=0))}
        aux = {"code": z, "indices": indices_N.reshape(h.shape[0], -1)}
        return z, {**aux, "terms": terms, "stats": stats}


class WinnerTakeAll(Bottleneck):
    """Sparsity by selection, no penalty (Makhzani and Frey, 2015): on a map code each feature
    map keeps only its largest activation per image (spatial, also at evaluation); in training
    each unit or feature map keeps only its `lifetime_rate` largest activations over the batch
    (lifetime), so every unit must serve some images well."""

    lifetime_rate: float = 0.05  # the fraction of the batch each unit is active for
    spatial: bool = True  # map codes: one winner per feature map and image

    def _spatial(self, h: jax.Array) -> jax.Array:
        if not (self.spatial and h.ndim == 4):
            return h
        b, height, width, c = h.shape
        flat_BxPxC = h.reshape(b, height * width, c)
        winner = jax.nn.one_hot(jnp.argmax(flat_BxPxC, axis=1), height * width, axis=1)
        return (flat_BxPxC * winner).reshape(h.shape)

    def encode(self, h: jax.Array) -> Encoding:
        return Encoding(code=self._spatial(h))

    def __call__(self, h: jax.Array, *, train: bool = False, samples: int | None = None):
        no_samples(samples)
        h = self._spatial(h)
        if train and self.lifetime_rate < 1:
            # A map's activity is its winner's value; the top k over the batch stay on.
            activity_BxC = h.max(axis=(1, 2)) if h.ndim == 4 else h.reshape(h.shape[0], -1)
            k = max(1, math.ceil(self.lifetime_rate * h.shape[0]))
            threshold_C = jax.lax.top_k(activity_BxC.T, k)[0][:, -1]
            keep_BxC = activity_BxC >= threshold_C
            h = h * (keep_BxC[:, None, None] if h.ndim == 4 else keep_BxC.reshape(h.shape))
        return h, {"code": h, "terms": {}, "stats": {}}


def collapse_warning(row: dict, config) -> str | None:
    """The warning for an epoch's `row` whose codebook perplexity (`train/perplexity`, logged by
    the quantising bottlenecks alone) is under COLLAPSED_PERPLEXITY: every image then decodes
    from nearly the same codes, and the loss alone does not show it. It names the fields of
    `config` (a run's ConfigDict) off its bottleneck's DEFAULTS (a preset's is vq)."""
    perplexity = row.get("train/perplexity")
    if perplexity is None or perplexity >= COLLAPSED_PERPLEXITY:
        return None
    kind = config.model.get("bottleneck") or "vq"
    defaults = DEFAULTS.get(kind, {})
    off = {path: want for path, want in defaults.items() if config[path] != want}
    problem = (
        f"warning: the {kind} codebook collapsed: train/perplexity {perplexity:.2f} at epoch "
        f"{row['epoch']} (under {COLLAPSED_PERPLEXITY:g}), so nearly every image decodes from the "
        "same codes."
    )
    if not off:
        ema = "a codebook kept by moving averages (model.codebook='ema') or " if kind == "vq" else ""
        return (
            f"{problem} The run has the {kind} bottleneck's defaults ({defaults}); {ema}a lower "
            "opt.lr may help."
        )
    now = ", ".join(f"{path}={config[path]!r}" for path in off)
    flags = " ".join(f"--config.{path}={want}" for path, want in off.items())
    python = ", ".join(f"{path.replace('.', '__')}={want!r}" for path, want in off.items())
    return (
        f"{problem} This run has {now}; a {kind} bottleneck learns with {flags} (in Python: "
        f"{python}), in a new workdir."
    )


def no_samples(samples: int | None) -> None:
    """Refuses several posterior samples per image, which only a gaussian has to draw."""
    if samples is not None:
        raise ValueError("several posterior samples per image (IWAE) need a gaussian bottleneck")
