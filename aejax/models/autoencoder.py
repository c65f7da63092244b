"""`Autoencoder`: any encoder, any bottleneck, any decoder, joined into one module."""

from collections.abc import Sequence

import flax.linen as nn
import jax

from aejax.models import bottlenecks
from aejax.models.capabilities import Capabilities


class Autoencoder(nn.Module):
    """logits = decode(bottleneck(encode(x))): any encoder, any bottleneck, any decoder.

    The bottleneck shares this module's scope (`nn.share_scope`), so its parameters sit at the
    top of the tree beside "encoder" and "decoder" ("mu_head", "codebook", "discriminator"):
    the tree of a VAE is the same as before bottlenecks were parts. `learned_variance` adds
    one log-variance parameter for a gaussian likelihood, reported as `obs_logvar`. A VampPrior
    reads the encoder's features of `prior_inputs` (`posteriors.PseudoInputs`).
    """

    encoder: nn.Module
    decoder: nn.Module
    bottleneck: nn.Module
    learned_variance: bool = False
    prior_inputs: nn.Module | None = None

    def setup(self):
        nn.share_scope(self, self.bottleneck)
        if self.learned_variance:
            self.obs_logvar = self.param("obs_logvar", nn.initializers.zeros, ())

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
        z, aux = self.bottleneck(h, train=train, samples=samples, **self._prior_features())
        if samples is None:
            logits = self.decode(z)
        else:
            logits = self.decode(z.reshape(-1, *z.shape[2:])).reshape(samples, *x.shape)
        if self.learned_variance:
            aux["obs_logvar"] = self.obs_logvar
        return logits, aux
