"""Input corruptions for denoising autoencoders: pure ops `corrupt(x, rng) -> x_tilde`, by name.

Every op maps images in [0, 1] to images in [0, 1], so a corrupted input is still a valid
input, except gaussian noise with `clip=False`: the `X + N(0, 1)` of Geron's "Hands-On Machine
Learning with Scikit-Learn and TensorFlow" (ch. 15), left as drawn. Each op draws only from
the key it is given: the loss hands it the step's own "corruption" stream.
The loss, not the op, decides when to corrupt (training, or evaluation if the config asks) and
keeps the clean image as the target.
"""

import functools
import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

Corruption = Callable[[jax.Array, jax.Array], jax.Array]


def gaussian(x: jax.Array, rng: jax.Array, *, factor: float, clip: bool) -> jax.Array:
    """Additive noise `x + factor * N(0, 1)`, clipped back to [0, 1] if `clip` ("Building
    Autoencoders in Keras"), unbounded if not (Hands-On ML's `X + N(0, 1)`, which also fits
    hidden codes)."""
    noisy = x + factor * jax.random.normal(rng, x.shape, x.dtype)
    return jnp.clip(noisy, 0.0, 1.0) if clip else noisy


def masking(x: jax.Array, rng: jax.Array, *, keep_prob: float) -> jax.Array:
    """Keeps each pixel with probability `keep_prob` and zeroes the rest.

    Dropout without its 1/keep_prob rescaling, which would push pixels above 1.
    """
    return jnp.where(jax.random.bernoulli(rng, keep_prob, x.shape), x, jnp.zeros_like(x))


def salt_and_pepper(x: jax.Array, rng: jax.Array, *, fraction: float) -> jax.Array:
    """Sets a `fraction` of the pixels to 0 or 1, with even odds."""
    hit_rng, salt_rng = jax.random.split(rng)
    hit = jax.random.bernoulli(hit_rng, fraction, x.shape)
    salt = jax.random.bernoulli(salt_rng, 0.5, x.shape).astype(x.dtype)
    return jnp.where(hit, salt, x)


CORRUPTIONS: dict[str, Callable[..., jax.Array]] = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
}
# Where each number makes sense; outside it an op would leave [0, 1] or not be a probability.
_VALID = {
    "factor": (0.0, float("inf")),
    "keep_prob": (0.0, 1.0),
    "fraction": (0.0, 1.0),
}
_SWITCHES = ("clip",)  # settings that are True or False


def works_on_any_code(cfg: ml_collections.ConfigDict) -> bool:
    """Whether the corruption assumes no range of its input, so that it can corrupt hidden
    codes: masking, and gaussian noise left unclipped."""
    return cfg.name == "masking" or (cfg.name == "gaussian" and not cfg.clip)


def build(cfg: ml_collections.ConfigDict) -> Corruption | None:
    """The op named by `cfg.name`, bound to its settings: every other field but `at_eval`;
    None for the name "none" (clean inputs)."""
    if cfg.name == "none":
        return None
    if cfg.name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {cfg.name!r}; choose none or one of {sorted(CORRUPTIONS)}")
    op = CORRUPTIONS[cfg.name]
    settings = {k: v for k, v in cfg.items() if k not in ("name", "at_eval")}
    expected = [p for p in inspect.signature(op).parameters if p not in ("x", "rng")]
    if sorted(settings) != sorted(expected):
        raise ValueError(f"corruption {cfg.name!r} takes {expected}, got {sorted(settings)}")
    for key, value in settings.items():
        if key in _SWITCHES:
            if not isinstance(value, bool):
                raise ValueError(f"corruption.{key} must be True or False, got {value!r}")
            continue
        low, high = _VALID[key]
        if not low <= value <= high:
            raise ValueError(f"corruption.{key} must be in [{low}, {high}], got {value}")
    return functools.partial(op, **settings)
