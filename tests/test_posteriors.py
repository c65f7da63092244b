"""Flows and the VampPrior: each flow step's log |det| is its Jacobian's, an IAF step is
autoregressive, a planar step stays invertible, the mixture density is the mean of its
components', and the gaussian bottleneck's log q(z|x) and log p(z) are the change of variables'
and the pseudo-inputs' posteriors' mixture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.data import sources
from aejax.data.dataset import as_float
from aejax.models import bottlenecks, factory, posteriors


def _jacobian_log_det(step, variables, z_NxK):
    """log |det df/dz| of each row, from the Jacobian itself."""
    jacobians = jax.vmap(jax.jacobian(lambda z: step.apply(variables, z[None])[0][0]))(z_NxK)
    return jnp.linalg.slogdet(jacobians)[1]


@pytest.mark.parametrize(
    "step", [posteriors.Planar(), posteriors.InverseAutoregressive((16, 16), reverse=True)]
)
def test_each_flow_steps_log_det_is_its_jacobians(step):
    z = jax.random.normal(jax.random.key(0), (8, 5))
    variables = step.init(jax.random.key(1), z)
    variables = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(jax.random.key(2), p.shape), variables)
    _, log_det = step.apply(variables, z)
    np.testing.assert_allclose(log_det, _jacobian_log_det(step, variables, z), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("reverse", [False, True])
def test_an_iaf_step_is_autoregressive_in_its_order(reverse):
    """Output i depends on inputs before i only, besides itself through sigma z_i: the Jacobian
    is triangular (lower in order, upper in reversed order) with sigma on its diagonal."""
    step = posteriors.InverseAutoregressive((12,), reverse=reverse)
    z = jax.random.normal(jax.random.key(0), (1, 4))
    variables = step.init(jax.random.key(1), z)
    jacobian = np.asarray(jax.jacobian(lambda z: step.apply(variables, z[None])[0][0])(z[0]))
    off = np.tril(jacobian, -1) if reverse else np.triu(jacobian, 1)
    assert np.all(off == 0) and np.any(jacobian - np.diag(np.diag(jacobian)) != 0)
    assert np.all((np.diag(jacobian) > 0) & (np.diag(jacobian) < 1))  # the gates


def test_a_planar_step_stays_invertible_whatever_its_parameters():
    """u and w pointing against each other (w.u = -25) would fold the space; u' keeps
    w.u' >= -1, so 1 + (1 - tanh^2) w.u' > 0 everywhere."""
    step = posteriors.Planar()
    variables = {"params": {"u": -5.0 * jnp.ones(5), "w": jnp.ones(5), "b": jnp.array(0.2)}}
    z = jnp.linspace(-3, 3, 40)[:, None] * jnp.ones((1, 5))
    _, log_det = step.apply(variables, z)
    assert np.all(np.isfinite(log_det))
    flowed = np.asarray(step.apply(variables, z)[0] @ jnp.ones(5))
    assert np.all(np.diff(flowed) > 0)  # along w the map stays monotone


def test_the_mixture_density_is_the_mean_of_its_components():
    mu = jax.random.normal(jax.random.key(0), (3, 4))
    logvar = 0.5 * jax.random.normal(jax.random.key(1), (3, 4))
    z = jax.random.normal(jax.random.key(2), (2, 6, 4))
    each = [posteriors.diagonal_log_density(z, mu[c], logvar[c]) for c in range(3)]
    want = np.log(np.mean(np.exp(np.asarray(each, np.float64)), axis=0))
    np.testing.assert_allclose(posteriors.mixture_log_density(z, mu, logvar), want, rtol=1e-5)


@pytest.fixture(scope="module")
def digits():
    return as_float(sources.load("mnist5k", "test")[0][:6])


def _model(name, **model):
    config = load_config(name)
    for field, value in model.items():
        config.model[field] = value
    config.model.encoder_widths, config.model.latent_dim = (32,), 4
    return factory.build(config.model)


@pytest.mark.parametrize("flow", ["planar", "iaf"])
def test_a_flowed_posteriors_density_is_the_change_of_variables(flow):
    """log q(z_L|x) = log N(z_0; mu, sigma) - log |det dz_L/dz_0|, the Jacobian taken of the
    bottleneck's own flow at its own draw; the KL term is the draw's log q - log p, the prior
    N(0, I)."""
    gaussian = bottlenecks.Gaussian(4, flow=flow, flow_layers=3)
    h = jax.random.normal(jax.random.key(0), (6, 10))
    variables = gaussian.init(jax.random.key(1), h)
    variables = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), variables)
    rngs = {"noise": jax.random.key(3)}
    z, aux = gaussian.apply(variables, h, rngs=rngs)
    mu, logvar = aux["mu"], aux["logvar"]
    eps = gaussian.apply(variables, h, rngs=rngs, method=lambda m, h: jax.random.normal(m.make_rng("noise"), (6, 4)))
    z0 = mu + jnp.exp(0.5 * logvar) * eps  # the bottleneck's draw, its first noise key

    def flow_of(z0_K):
        return gaussian.apply(variables, z0_K[None], method="_flowed")[0][0]

    np.testing.assert_allclose(jax.vmap(flow_of)(z0), z, rtol=1e-5, atol=1e-6)
    log_det = jnp.linalg.slogdet(jax.vmap(jax.jacobian(flow_of))(z0))[1]
    want = posteriors.diagonal_log_density(z0, mu, logvar) - log_det
    np.testing.assert_allclose(aux["log_q"], want, rtol=1e-4, atol=1e-4)
    log_prior = jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1)
    np.testing.assert_allclose(aux["terms"]["kl"], jnp.mean(want - log_prior), rtol=1e-4)


def test_the_vamp_prior_is_the_mixture_of_its_pseudo_inputs_posteriors(digits):
    """log p(z) = log mean_c N(z; mu(u_c), sigma(u_c)), the posteriors worked by the model's
    own encoder from its pseudo-inputs (in [0, 1]); its draws follow one component each: with a
    single pseudo-input their mean and deviation are that posterior's."""
    model = _model("vamp", pseudo_inputs=1)
    variables = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, digits)
    u = variables["params"]["prior_inputs"]["inputs"]
    assert u.shape == (1, 28, 28, 1)
    np.testing.assert_allclose(np.mean(u), posteriors.PSEUDO_INPUT_MEAN, atol=2e-3)
    _, aux = model.apply(variables, digits, rngs={"noise": jax.random.key(2)}, samples=3)
    posterior = model.apply(variables, jnp.clip(u, 0, 1), method=lambda m, x: m.encode(x))
    mu_u, logvar_u = posterior.code, posterior.logvar
    want = posteriors.diagonal_log_density(aux["z"], mu_u[0], logvar_u[0])
    np.testing.assert_allclose(aux["log_prior"], want, rtol=1e-5)
    draws = model.apply(variables, 20000, rngs={"noise": jax.random.key(3)}, method="prior_draws")
    np.testing.assert_allclose(np.mean(draws, 0), mu_u[0], atol=0.03)
    np.testing.assert_allclose(np.std(draws, 0), np.exp(0.5 * logvar_u[0]), rtol=0.03)
    assert model.capabilities.drawn_prior and not model.capabilities.normal_prior


def test_shuffled_latents_keep_each_latents_values_and_break_their_dependence():
    """Two equal latents (TC infinite): shuffled apart, each keeps its values, and they no longer
    agree."""
    t = jnp.arange(64.0)
    z = jnp.stack([t, t], axis=1)
    shuffled = np.asarray(bottlenecks.shuffled_latents(jax.random.key(0), z))
    for k in range(2):
        np.testing.assert_array_equal(np.sort(shuffled[:, k]), np.asarray(t))
    assert np.mean(shuffled[:, 0] == shuffled[:, 1]) < 0.1


def test_factorvaes_terms_train_their_own_side(digits):
    """The discriminator's term moves its parameters alone; the TC estimate (the logit on the
    codes) moves the encoder and not the discriminator."""
    model = _model("factorvae", discriminator_widths=(8, 8))
    variables = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, digits)

    def grad_of(term):
        def term_value(params):
            _, aux = model.apply({"params": params}, digits, rngs={"noise": jax.random.key(2)})
            return aux["terms"][term]

        return jax.grad(term_value)(variables["params"])

    def moves(tree):
        return any(np.any(leaf) for leaf in jax.tree.leaves(tree))

    disc, tc = grad_of("discriminator"), grad_of("tc")
    assert moves(disc["discriminator"]) and not moves({k: v for k, v in disc.items() if k != "discriminator"})
    assert moves(tc["encoder"]) and not moves(tc["discriminator"])


@pytest.mark.parametrize(
    "model, message",
    [
        ({"flow": "planar", "prior": "vamp"}, "choose one"),
        ({"flow": "radial"}, "unknown model.flow 'radial'"),
        ({"prior": "gmm"}, "unknown model.prior 'gmm'"),
        ({"flow": "iaf", "total_correlation": True}, "tc_estimator='discriminator'"),
        ({"flow": "iaf", "flow_layers": 0}, "flow_layers of at least 1"),
    ],
)
def test_options_a_gaussian_cannot_combine_are_refused(model, message):
    with pytest.raises(ValueError, match=message):
        _model("vae", **model)
