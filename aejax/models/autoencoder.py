"""`Autoencoder`: any encoder, any bottleneck, any decoder, joined into one module."""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.models import bottlenecks, posteriors
from aejax.models.capabilities import Capabilities
from aejax.objectives import likelihoods


def logit(p: float) -> float:
    return math.log(p / (1 - p))


class Autoencoder(nn.Module):
    """logits = decode(bottleneck(encode(x))): any encoder, any bottleneck, any decoder.

    The bottleneck shares this module's scope (`nn.share_scope`), so its parameters sit at the
    top of the tree beside "encoder" and "decoder" ("mu_head", "codebook", "discriminator"):
    the tree of a VAE is the same as before bottlenecks were parts. `learned_variance` adds
    one log-variance parameter for a gaussian likelihood, reported as `obs_logvar`. A VampPrior
    reads the encoder's features of `prior_inputs` (`posteriors.PseudoInputs`).

    With `leapfrog_steps` = K > 0 (a gaussian bottleneck) the posterior's draw moves along K
    tempered leapfrog steps of the Hamiltonian whose potential is -log p(x, z), `likelihood`'s
    density of the image given the code plus the prior's: the Hamiltonian VAE ("Hamiltonian
    Variational Auto-Encoder", Caterini et al., 2018). Its step size and initial inverse
    temperature are parameters ("leapfrog_log_step", "tempering_logit"), learned with the rest.
    """

    encoder: nn.Module
    decoder: nn.Module
    bottleneck: nn.Module
    learned_variance: bool = False
    prior_inputs: nn.Module | None = None
    leapfrog_steps: int = 0
    leapfrog_step_size: float = 0.01  # where the learned step size starts
    tempering: float = 0.3  # where the learned beta_0 starts (Pythae's HVAE default)
    likelihood: str = "bernoulli"  # the potential's: the loss's own (checked there)

    def setup(self):
        nn.share_scope(self, self.bottleneck)
        if self.learned_variance:
            self.obs_logvar = self.param("obs_logvar", nn.initializers.zeros, ())
        if self.leapfrog_steps:
            self.leapfrog_log_step = self.param(
                "leapfrog_log_step", nn.initializers.constant(math.log(self.leapfrog_step_size)), ()
            )
            self.tempering_logit = self.param(
                "tempering_logit", nn.initializers.constant(logit(self.tempering)), ()
            )

    @property
    def capabilities(self) -> Capabilities:
        """What it does, from what its parts declare: a plain code (the features as they are,
        no prior to match) is what greedy pretraining pairs layers around."""
        bottleneck, encoder = self.bottleneck, self.encoder
        widths = encoder.dense_widths
        plain = bottleneck.passes_features and not bottleneck.normal_prior
        return Capabilities(
            reconstructs=True,
            normal_prior=bottleneck.normal_prior,
            drawn_prior=bottleneck.drawn_prior,
            indexed_codes=bottleneck.indexed_codes,
            code_2d=bottleneck.code_units(widths[-1] if widths else None) == 2,
            posterior_density=bottleneck.posterior_density,
            learned_variance=self.learned_variance,
            code_activation=encoder.code_activation if bottleneck.passes_features else None,
            greedy_layers=encoder.layer_kind if plain else None,
            hidden_widths=widths,
            potential_likelihood=self.likelihood if self.leapfrog_steps else None,
        )

    def encode(self, x: jax.Array) -> bottlenecks.Encoding:
        return self.bottleneck.encode(self.encoder(x))

    def decode(self, code: jax.Array) -> jax.Array:
        return self.decoder(code)

    def hidden(self, x: jax.Array, layer: int) -> jax.Array:
        """The units [B, K] of dense encoder layer `layer` (0: the first), one of
        `capabilities.hidden_widths`."""
        return self.encoder(x, stop=layer + 1)

    def _prior_features(self) -> dict:
        """What the bottleneck's prior reads beside the codes: a VampPrior's pseudo-inputs'
        features."""
        if self.prior_inputs is None:
            return {}
        return {"prior_features": self.encoder(self.prior_inputs())}

    def prior_draws(self, n: int) -> jax.Array:
        """`n` codes drawn from the prior the model learned (`capabilities.drawn_prior`)."""
        return self.bottleneck.prior_draws(self._prior_features()["prior_features"], n)

    def decode_indices(self, indices_BxN: jax.Array, code_shape: Sequence[int]) -> jax.Array:
        """A vector-quantised code given by its codebook indices (an image's code of
        `code_shape`, cut into vectors), decoded: how a prior's samples become images."""
        vectors = self.bottleneck.vectors(indices_BxN)
        return self.decode(vectors.reshape(indices_BxN.shape[0], *code_shape))

    def __call__(
        self, x: jax.Array, *, train: bool = False, samples: int | None = None
    ) -> tuple[jax.Array, dict]:
        """The logits and the bottleneck's `aux` (its loss terms under "terms"). With `samples`
        (a gaussian bottleneck) the code is [samples, B, ...] and the logits
        [samples, B, H, W, C] (importance sampling, IWAE)."""
        h = self.encoder(x)
        prior_features = self._prior_features()
        z, aux = self.bottleneck(h, train=train, samples=samples, **prior_features)
        if self.leapfrog_steps:
            z, logits, aux = self._hamiltonian_flow(x, z, aux, prior_features, samples)
        else:
            logits = self._decode_draws(z, x.shape, samples)
        if self.learned_variance:
            aux["obs_logvar"] = self.obs_logvar
        return logits, aux

    def _decode_draws(self, z: jax.Array, image_shape: Sequence[int], samples: int | None):
        """Logits of codes [B, ...], or of `samples` draws [S, B, ...] of each."""
        if samples is None:
            return self.decode(z)
        logits = self.decode(z.reshape(-1, *z.shape[2:]))
        return logits.reshape(samples, *image_shape)

    def _potential(self, z: jax.Array, x: jax.Array, prior_features: dict, samples: int | None):
        """-log p(x | z) - log p(z) summed over every draw, and the logits of z."""
        logits = self._decode_draws(z, x.shape, samples)
        logvar = self.obs_logvar if self.learned_variance else None
        nll = likelihoods.per_image(likelihoods.reconstruction(logits, x, self.likelihood, logvar))
        log_prior = self.bottleneck.log_prior(z, prior_features.get("prior_features"))
        return jnp.sum(nll - log_prior), logits

    def _hamiltonian_flow(self, x, z0, aux: dict, prior_features: dict, samples: int | None):
        """The draw z_0 moved by the tempered leapfrog steps; the weights' terms extended by
        the momentum: log q = log q(z_0|x) + log N(gamma; 0, I), log p = log p(z_K) + log N(rho_K;
        0, I) (the steps preserve volume and the tempering's scalings multiply to the
        momentum's initial scale, so these are the extended space's densities)."""

        def gradient(z):
            (g,), logits = nn.grad(
                lambda model, z: model._potential(z, x, prior_features, samples),
                self, z, has_aux=True,
            )
            return g, logits

        gamma = jax.random.normal(self.make_rng("noise"), z0.shape, z0.dtype)
        z, rho, logits = posteriors.tempered_leapfrog(
            gradient, z0, gamma, jnp.exp(self.leapfrog_log_step),
            nn.sigmoid(self.tempering_logit), self.leapfrog_steps,
        )  # fmt: skip
        log_q = aux["log_q"] + posteriors.standard_log_density(gamma)
        log_prior = self.bottleneck.log_prior(z, prior_features.get("prior_features"))
        log_prior = log_prior + posteriors.standard_log_density(rho)
        kl = log_q - log_prior if samples is None else log_q[0] - log_prior[0]
        terms = {**aux["terms"], "kl": jnp.mean(kl)}
        aux = {**aux, "z": z, "log_q": log_q, "log_prior": log_prior, "terms": terms}
        return z, logits, aux
