"""Flows, the VampPrior and the HVAE: each flow step's log |det| is its Jacobian's, an IAF step
is autoregressive, a planar step stays invertible, the mixture density is the mean of its
components', the gaussian bottleneck's log q(z|x) and log p(z) are the change of variables'
and the pseudo-inputs' posteriors' mixture; leapfrog keeps its Hamiltonian and runs back, the
HVAE's draw follows the written-out steps and its weights estimate its VAE's likelihood."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from aejax.data import sources
from aejax.data.dataset import as_float
from aejax.evaluation import nll
from aejax.models import bottlenecks, factory, posteriors
from aejax.objectives import autoencoding, likelihoods


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


# --- the Hamiltonian VAE ---------------------------------------------------------------------


def test_leapfrog_without_a_potential_drifts_and_ends_at_the_drawn_momentum():
    """U = 0: each step moves z by eps rho; the tempering scales rho from gamma / sqrt(beta0)
    through gamma / sqrt(beta_k) to gamma itself at beta_K = 1."""
    z0, gamma = jnp.array([[0.5, -1.0]]), jnp.array([[1.0, 2.0]])
    beta0, eps, steps = 0.25, 0.1, 3
    z, rho, _ = posteriors.tempered_leapfrog(
        lambda z: (jnp.zeros_like(z), None), z0, gamma, eps, beta0, steps
    )
    inv_sqrt_beta = [1 + (2.0 - 1) * (1 - (k / steps) ** 2) for k in range(steps)]  # 2, 1.89, 1.56
    np.testing.assert_allclose(z, z0 + eps * gamma * sum(inv_sqrt_beta), rtol=1e-5)
    np.testing.assert_allclose(rho, gamma, rtol=1e-6)


def test_untempered_leapfrog_keeps_the_hamiltonian_and_runs_back():
    """beta0 = 1 leaves plain leapfrog: on U = z.A.z / 2 the energy drifts by O(eps^2), and
    starting from (z_K, -rho_K) it retraces its steps to (z_0, -rho_0)."""
    a = jnp.array([[2.0, 0.5], [0.5, 1.0]])

    def gradient(z):
        return z @ a, None

    def energy(z, rho):
        return 0.5 * jnp.sum((z @ a) * z) + 0.5 * jnp.sum(jnp.square(rho))

    z0, rho0 = jnp.array([[1.0, -0.5]]), jnp.array([[0.3, 0.8]])
    drifts = []
    for eps, steps in ((0.1, 10), (0.05, 20)):  # the same time, 1
        energies = [
            energy(*posteriors.tempered_leapfrog(gradient, z0, rho0, eps, 1.0, k)[:2])
            for k in range(1, steps + 1)
        ]
        drifts.append(max(abs(float(e - energy(z0, rho0))) for e in energies))
        z, rho, _ = posteriors.tempered_leapfrog(gradient, z0, rho0, eps, 1.0, steps)
        back_z, back_rho, _ = posteriors.tempered_leapfrog(gradient, z, -rho, eps, 1.0, steps)
        np.testing.assert_allclose(back_z, z0, atol=1e-5)
        np.testing.assert_allclose(back_rho, -rho0, atol=1e-5)
    assert drifts[0] < 0.02 and 3.0 < drifts[0] / drifts[1] < 5.0, drifts  # halving eps: / 4


def test_the_hvae_moves_its_draw_along_the_gradient_of_log_p_x_z(digits):
    """The model's code, logits and KL, and the gradient of its loss, against the leapfrog
    written out with jax.grad of -log p(x | z) - log p(z) through the model's own decoder: the
    draw z_0 and momentum gamma are the model's (its noise stream's first two keys)."""
    model = _model("hvae", leapfrog_step_size=0.05)
    variables = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, digits)
    rngs = {"noise": jax.random.key(2)}

    def noises(m, x):
        shape = (x.shape[0], 4)
        return [jax.random.normal(m.make_rng("noise"), shape) for _ in range(2)]

    eps0, gamma = model.apply(variables, digits, rngs=rngs, method=noises)

    def written_out(params):
        posterior = model.apply({"params": params}, digits, method="encode")
        mu, logvar = posterior.code, posterior.logvar
        z0 = mu + jnp.exp(0.5 * logvar) * eps0

        def potential(z):
            logits = model.apply({"params": params}, z, method="decode")
            nll = likelihoods.per_image(likelihoods.reconstruction(logits, digits, "bernoulli"))
            return jnp.sum(nll - posteriors.standard_log_density(z)), logits

        step, beta0 = jnp.exp(params["leapfrog_log_step"]), jax.nn.sigmoid(params["tempering_logit"])
        z, rho, logits = posteriors.tempered_leapfrog(
            jax.grad(potential, has_aux=True), z0, gamma, step, beta0, 3
        )
        log_q = posteriors.diagonal_log_density(z0, mu, logvar) + posteriors.standard_log_density(gamma)
        log_p = posteriors.standard_log_density(z) + posteriors.standard_log_density(rho)
        recon = jnp.sum(likelihoods.reconstruction(logits, digits, "bernoulli")) / len(digits)
        return recon + jnp.mean(log_q - log_p), (z, logits, jnp.mean(log_q - log_p))

    params = variables["params"]
    logits, aux = model.apply(variables, digits, rngs=rngs)
    (want_loss, (z, want_logits, kl)), want_grads = jax.value_and_grad(written_out, has_aux=True)(params)
    np.testing.assert_allclose(aux["z"], z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(aux["terms"]["kl"], kl, rtol=1e-5)

    def model_loss(params):
        logits, aux = model.apply({"params": params}, digits, rngs=rngs)
        recon = jnp.sum(likelihoods.reconstruction(logits, digits, "bernoulli")) / len(digits)
        return recon + aux["terms"]["kl"]

    np.testing.assert_allclose(model_loss(params), want_loss, rtol=1e-5)
    grads = jax.grad(model_loss)(params)
    assert np.abs(grads["leapfrog_log_step"]) > 0 and np.abs(grads["tempering_logit"]) > 0
    chex.assert_trees_all_close(grads, want_grads, rtol=1e-3, atol=1e-4)


def test_the_hvaes_weights_estimate_the_same_likelihood_as_its_vaes(digits):
    """The extended space's weights p(x, z_K) N(rho_K) / (q(z_0|x) N(gamma)) have mean p(x): an
    HVAE's importance-sampled log p(x) (k = 4000) agrees with the plain VAE's of the same
    encoder and decoder within 0.5 nats an image, where a momentum density or Jacobian left
    out would shift it by d/2 log(2 pi e) = 5.7 or d/2 log(beta0) = -2.4 nats (d = 4); and its
    ELBO, climbing log p(x, z), is the higher."""
    model = _model("hvae", leapfrog_step_size=0.2)
    vae = _model("iwae")
    params = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, digits)["params"]
    vae_params = {k: v for k, v in params.items() if k not in ("leapfrog_log_step", "tempering_logit")}
    loss_cfg = load_config("iwae").loss
    log_px, elbo = nll.make_log_likelihood(model, loss_cfg, 500)(params, digits, jax.random.key(3), 4000)
    vae_log_px, vae_elbo = nll.make_log_likelihood(vae, loss_cfg, 500)(
        vae_params, digits, jax.random.key(3), 4000
    )
    assert abs(float(jnp.mean(log_px - vae_log_px))) < 0.5, (log_px, vae_log_px)
    assert float(jnp.mean(elbo - vae_elbo)) > 2.0, (elbo, vae_elbo)


@pytest.mark.parametrize(
    "model, loss, message",
    [
        ({"bottleneck": "deterministic"}, {}, "needs model.bottleneck='gaussian'"),
        ({"tempering": 1.0}, {}, r"in \(0, 1\)"),
        ({"likelihood": "gaussian"}, {}, "model.learned_variance=True"),
        ({}, {"likelihood": "gaussian", "variance": 0.1}, "set both to the same"),
        ({}, {"corruption.name": "masking"}, "drop the corruption"),
    ],
)
def test_an_hvae_refuses_what_its_potential_cannot_read(model, loss, message):
    config = load_config("hvae")
    with pytest.raises(ValueError, match=message):
        for field, value in model.items():
            config.model[field] = value
        for field, value in loss.items():
            group, name = field.split(".") if "." in field else (None, field)
            (config.loss[group] if group else config.loss)[name] = value
        autoencoding.make_loss_fn(factory.build(config.model), config.loss)
