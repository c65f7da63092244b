"""Penalties added to the reconstruction loss, by name: weight decay, sparsity, contraction,
and the regularised autoencoders' code and decoder penalties.

A config lists them in `loss.regularizers`, one group per penalty named as in `REGULARIZERS`,
each with a `weight` and the penalty's own settings. A penalty's term maps `(params, aux)` to
a batch-mean scalar; the loss adds `weight * term` and reports the term under the penalty's
name. What a penalty needs from the architecture (a code in (0, 1), a one-layer sigmoid
encoder) is checked here, when the loss is built, so a config that cannot work is refused
before training instead of turning into NaN during it.
"""

import inspect
import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from aejax.objectives import likelihoods

Term = Callable[[dict, dict], jax.Array]
# Activations whose range lies inside (0, 1): the only codes that are Bernoulli means.
UNIT_INTERVAL_ACTIVATIONS = ("sigmoid",)
# float32 sigmoid rounds to exactly 1 beyond about 17; this guards that rounding, not the range.
_EPS = 1e-6


def bernoulli_kl(rho: float, rho_hat: jax.Array) -> jax.Array:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)), elementwise."""
    return rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat))


def sigmoid_layer_jacobian_sq_norm(h_BxK: jax.Array, kernel_DxK: jax.Array) -> jax.Array:
    """||dh/dx||_F^2 per example for h = sigmoid(x W + b), in closed form: shape [B].

    dh_j/dx_i = h_j (1 - h_j) W_ij, so the squared norm is
    sum_j (h_j (1 - h_j))^2 sum_i W_ij^2: O(DK) instead of a [K, D] Jacobian per example.
    """
    return jnp.square(h_BxK * (1 - h_BxK)) @ jnp.sum(jnp.square(kernel_DxK), axis=0)


def _code_activation(model: nn.Module, name: str) -> str:
    code_activation = model.capabilities.code_activation
    if code_activation is None:
        raise ValueError(
            f"regularizer {name!r} needs an Autoencoder with a deterministic bottleneck whose "
            "encoder has a code_activation"
        )
    return code_activation


def l2(model: nn.Module) -> Term:
    """Sum of squares of every kernel (biases are free): weight decay written into the loss.

    A tied kernel is one parameter and is counted once.
    """
    del model

    def term(params, aux):
        del aux
        return sum(jnp.sum(jnp.square(w)) for w in _kernels(params))

    return term


def _kernels(params) -> list[jax.Array]:
    return [w for path, w in jax.tree.leaves_with_path(params) if path[-1].key == "kernel"]


def decoder_l2(model: nn.Module) -> Term:
    """Sum of squares of the decoder's kernels alone: RAE-L2's decoder penalty ("From Variational
    to Deterministic Autoencoders", Ghosh et al., 2020), which smooths the decoder where a
    fitted sampler will read it."""
    if not model.capabilities.reconstructs:
        raise ValueError("decoder_l2 penalises a decoder's kernels; this model has no decoder")

    def term(params, aux):
        del aux
        return sum(jnp.sum(jnp.square(w)) for w in _kernels(params["decoder"]))

    return term


def code_l2(model: nn.Module) -> Term:
    """0.5 |z|^2 per image, averaged over the batch: RAE's code penalty, which keeps the codes
    near the origin without a prior to match."""
    _code_activation(model, "code_l2")

    def term(params, aux):
        del params
        code = aux["code"].reshape(aux["code"].shape[0], -1)
        return 0.5 * jnp.mean(jnp.sum(jnp.square(code), axis=-1))

    return term


def decoder_gradient(model: nn.Module, *, likelihood: str) -> Term:
    """|d sum(decoder mean image) / dz|^2 at each image's code, averaged over the batch: RAE-GP's
    gradient penalty, as Pythae computes it (the gradient of the summed output, not the whole
    Jacobian). Differentiated twice, so both the decoder and the codes answer for it."""
    _code_activation(model, "decoder_gradient")

    def summed_output(params, code):
        logits = model.apply({"params": params}, code, method="decode")
        return jnp.sum(likelihoods.mean_image(logits, likelihood))

    def term(params, aux):
        grad = jax.grad(summed_output, argnums=1)(params, aux["code"])
        return jnp.mean(jnp.sum(jnp.square(grad.reshape(grad.shape[0], -1)), axis=-1))

    return term


def kl_sparsity(model: nn.Module, *, target: float) -> Term:
    """sum_j KL(target || rho_hat_j), rho_hat_j the batch-mean activation of code unit j."""
    code_activation = _code_activation(model, "kl_sparsity")
    if code_activation not in UNIT_INTERVAL_ACTIVATIONS:
        raise ValueError(
            f"kl_sparsity treats each code unit's mean activation as a Bernoulli probability, so "
            f"it needs a code in (0, 1); code_activation={code_activation!r} can leave (0, 1) and "
            "the KL would be undefined (NaN). Use code_activation='sigmoid', or l1_sparsity."
        )
    if not 0 < target < 1:
        raise ValueError(f"kl_sparsity.target must be in (0, 1), got {target}")

    def term(params, aux):
        del params
        rho_hat_K = jnp.clip(jnp.mean(aux["code"], axis=0), _EPS, 1 - _EPS)
        return jnp.sum(bernoulli_kl(target, rho_hat_K))

    return term


def l1_sparsity(model: nn.Module) -> Term:
    """sum_j |h_j| averaged over the batch: an activity penalty for any code activation."""
    _code_activation(model, "l1_sparsity")

    def term(params, aux):
        del params
        return jnp.mean(jnp.sum(jnp.abs(aux["code"]), axis=-1))

    return term


def contractive(model: nn.Module) -> Term:
    """The squared Frobenius norm of the encoder's Jacobian, exact, averaged over the batch.

    Exact only for the encoder it has a closed form for: one dense layer with a sigmoid.
    """
    code_activation = _code_activation(model, "contractive")
    widths = model.capabilities.hidden_widths
    if code_activation != "sigmoid" or len(widths) != 1:
        raise ValueError(
            "contractive uses the closed-form Jacobian of one sigmoid layer; got encoder widths "
            f"{widths} with code_activation={code_activation!r}. Use one "
            "encoder width and code_activation='sigmoid'."
        )

    def term(params, aux):
        [kernel_DxK] = model.apply({"params": params}, method=lambda ae: ae.encoder.kernels())
        return jnp.mean(sigmoid_layer_jacobian_sq_norm(aux["code"], kernel_DxK))

    return term


REGULARIZERS: dict[str, Callable[..., Term]] = {
    "l2": l2,
    "kl_sparsity": kl_sparsity,
    "l1_sparsity": l1_sparsity,
    "contractive": contractive,
    "code_l2": code_l2,
    "decoder_l2": decoder_l2,
    "decoder_gradient": decoder_gradient,
}
FROM_THE_LOSS = ("likelihood",)  # what a penalty may take from `loss`, not from its own group


def build(
    cfg: ml_collections.ConfigDict, model: nn.Module, likelihood: str = "bernoulli"
) -> dict[str, tuple[float, Term]]:
    """`{name: (weight, term)}` for each group in `cfg` (a config's `loss.regularizers`); a
    penalty that reads the decoder's mean image gets the loss's `likelihood`."""
    penalties = {}
    for name, group in cfg.items():
        if name not in REGULARIZERS:
            raise ValueError(f"unknown regularizer {name!r}; choose one of {sorted(REGULARIZERS)}")
        factory = REGULARIZERS[name]
        settings = {k: v for k, v in group.items() if k != "weight"}
        parameters = inspect.signature(factory).parameters
        expected = [p for p in parameters if p != "model" and p not in FROM_THE_LOSS]
        if sorted(settings) != sorted(expected):
            raise ValueError(
                f"regularizers.{name} takes weight and {expected}, got {sorted(settings)}"
            )
        weight = group.get("weight")
        if weight is None or not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"regularizers.{name}.weight must be finite and >= 0, got {weight}")
        if "likelihood" in parameters:
            settings["likelihood"] = likelihood
        penalties[name] = (weight, factory(model, **settings))
    return penalties
