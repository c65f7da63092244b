"""What a trained model computes from images or codes: codes, mean images, reconstructions and
samples, compiled and batched.

`codes`, `decode`, `reconstruct` and `sample` run one compiled function per `batch_size` rows,
so inputs of any length fit in memory; the model is a static argument, so calls with the same
model reuse one compilation per batch shape. `code`, `mean_image` and `reconstruction` compute
one batch, for use inside another compiled function (JAX refuses compiler options on a jit
nested in another). Images may be stored uint8: each batch is scaled as training scales it.
"""

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax import compiled
from aejax.data.dataset import as_float
from aejax.models import code_prior
from aejax.objectives import likelihoods

BATCH = 1000  # rows per compiled call


def code(model: nn.Module, params, x: jax.Array) -> jax.Array:
    """The code of a batch of images: an autoencoder's code, a VAE's posterior mean (no
    sampling), a classifier's code."""
    return model.apply({"params": params}, as_float(x), method="encode").code


def mean_image(model: nn.Module, params, z: jax.Array, likelihood: str) -> jax.Array:
    """The likelihood's mean image of the decoder's logits of a batch of codes."""
    logits = model.apply({"params": params}, z, method="decode")
    return likelihoods.mean_image(logits, likelihood)


def reconstruction(model: nn.Module, params, x: jax.Array, likelihood: str) -> jax.Array:
    """The mean image of a batch of images' codes: what a person compares with the input."""
    return mean_image(model, params, code(model, params, x), likelihood)


_compiled_code = compiled.jit(code, static_argnums=0)
_compiled_mean_image = compiled.jit(mean_image, static_argnums=(0, 3))
_compiled_reconstruction = compiled.jit(reconstruction, static_argnums=(0, 3))


def batched(fn: Callable[[jax.Array], jax.Array], x, batch_size: int = BATCH) -> jax.Array:
    """`fn` (compiled) applied to `x` `batch_size` rows at a time, joined along rows."""
    return jnp.concatenate([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def codes(model: nn.Module, params, images, batch_size: int = BATCH) -> jax.Array:
    """The codes [N, *code shape] of images [N, H, W, C]."""
    return batched(functools.partial(_compiled_code, model, params), images, batch_size)


def decode(model: nn.Module, params, z, likelihood: str, batch_size: int = BATCH) -> jax.Array:
    """The mean images [N, H, W, C] of codes `z` [N, *code shape]."""
    return batched(
        lambda z_batch: _compiled_mean_image(model, params, z_batch, likelihood), z, batch_size
    )


def reconstruct(
    model: nn.Module, params, images, likelihood: str, batch_size: int = BATCH
) -> jax.Array:
    """decode(codes(images)) in one compiled function per batch: a VAE's from its posterior
    means, without noise."""
    return batched(
        lambda x: _compiled_reconstruction(model, params, x, likelihood), images, batch_size
    )


def code_shape(model: nn.Module, params, image_shape: Sequence[int]) -> tuple[int, ...]:
    """An image's code shape, without the batch: what `codes` gives and `decode` takes."""
    example = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    return tuple(jax.eval_shape(lambda x: code(model, params, x), example).shape[1:])


def sample(
    model: nn.Module,
    params,
    rng: jax.Array,
    n: int,
    likelihood: str,
    image_shape: Sequence[int],
    *,
    name: str = "this model",
    workdir: str = "<the VQ-VAE's workdir>",
    batch_size: int = BATCH,
) -> jax.Array:
    """`n` images [n, H, W, C], the mean images of codes drawn from the model's prior: N(0, I)
    in the code's shape for `image_shape` (`rng` draws them at once), or a learned prior's
    draws (`code_prior.sample_codes`, the VampPrior's `prior_draws`). A model without a prior
    is refused, its refusal naming it `name` and, for a VQ-VAE, the run to train a prior from,
    `workdir`."""
    capabilities = model.capabilities
    if capabilities.learned_prior:
        z = code_prior.sample_codes(model, params, rng, n)
    elif capabilities.drawn_prior:
        draws = compiled.jit(
            lambda p, key: model.apply({"params": p}, n, rngs={"noise": key}, method="prior_draws")
        )
        z = draws(params, rng)
    elif capabilities.normal_prior:
        z = jax.random.normal(rng, (n, *code_shape(model, params, image_shape)))
    elif capabilities.indexed_codes:
        raise TypeError(
            "a VQ-VAE's codes have no N(0, I) prior to draw from: train a prior over them, "
            f"aejax.fit('vqvae_prior', train__init_from='{workdir}') (or aejax train "
            f"--config vqvae_prior --config.train.init_from={workdir}), and sample that run"
        )
    elif not capabilities.reconstructs:
        raise TypeError(f"sample decodes draws of a prior; {name} has no decoder")
    else:
        raise TypeError(
            f"sample draws from a N(0, I) prior; {name} is a deterministic autoencoder whose "
            "codes were not matched to one (model.prior_match): fit a sampler to its codes, "
            "run.fit_sampler() (aejax sampler --workdir=RUN), or decode codes of your own"
        )
    return decode(model, params, z, likelihood, batch_size)
