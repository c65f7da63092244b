"""Bottlenecks: each one's maths (the gaussian's KL and sampling, the MMD, the total correlation,
VQ's nearest entry, straight-through gradient, terms and EMA update, winner-take-all), where
each term's gradient goes (the adversarial step's isolation), and a collapsed codebook named."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import load_config

import aejax
from aejax import configs
from aejax.configs import fields
from aejax.data import sources
from aejax.data.dataset import as_float
from aejax.evaluation import figures
from aejax.models import bottlenecks, factory
from aejax.objectives import autoencoding
from aejax.training.optimizers import make_optimizer
from aejax.training.state import create_state
from aejax.training.step import make_train_step


@pytest.fixture(scope="module")
def mnist_batch():
    """200 real mnist5k training images, scaled as the step scales them."""
    return as_float(sources.load("mnist5k", "train")[0][:200])


# --- gaussian: KL and sampling ------------------------------------------------------------------


def test_gaussian_kl_of_a_hand_worked_posterior_and_zero_at_the_prior():
    """KL(N(mu, s^2) || N(0, 1)) = (s^2 + mu^2 - 1 - log s^2) / 2 per latent: for mu = (1, 0)
    and s^2 = (1, 2) that is 1/2 + (1 - log 2)/2 = 1 - log(2)/2; the prior itself has none."""
    mu = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    logvar = jnp.array([[0.0, np.log(2.0)], [0.0, 0.0]])
    kl = bottlenecks.gaussian_kl(mu, logvar)
    np.testing.assert_allclose(kl, [1 - np.log(2) / 2, 0.0], rtol=1e-6, atol=1e-7)


def test_the_sigma_heads_kl_is_below_the_true_kl_by_its_floor():
    """log(sigma^2 + eps) in place of log(sigma^2): at sigma^2 = eps the KL is 0.5 log 2 below
    the true one, at larger sigmas the same to float precision."""
    sigma = jnp.array([[np.sqrt(bottlenecks.SIGMA_EPS), 0.5, 2.0]])
    mu = jnp.array([[0.3, -1.0, 0.0]])
    true_kl = bottlenecks.gaussian_kl(mu, jnp.log(sigma**2))
    floored = bottlenecks.gaussian_kl_sigma(mu, sigma)
    np.testing.assert_allclose(true_kl - floored, [0.5 * np.log(2)], atol=1e-5)
    wide = sigma[:, 1:]
    np.testing.assert_allclose(
        bottlenecks.gaussian_kl_sigma(mu[:, 1:], wide),
        bottlenecks.gaussian_kl(mu[:, 1:], jnp.log(wide**2)),
        rtol=1e-6,
    )


def test_reparameterised_sample_has_the_posterior_moments():
    model = factory.build(load_config("vae").model)
    x = jax.random.uniform(jax.random.key(0), (1, 28, 28, 1))
    rngs = {"params": jax.random.key(1), "noise": jax.random.key(2)}
    params = jax.jit(model.init)(rngs, x)["params"]
    x = np.repeat(x, 20_000, axis=0)
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x, rngs={"noise": jax.random.key(4)}))
    _, aux = apply(params, x)
    np.testing.assert_allclose(aux["z"].mean(0), aux["mu"][0], atol=0.03)
    np.testing.assert_allclose(aux["z"].var(0), np.exp(aux["logvar"][0]), rtol=0.05)


def test_several_samples_per_image_need_a_gaussian(mnist_batch):
    """`samples` draws a code [samples, B, K] from a gaussian posterior; the other bottlenecks
    have no posterior to draw from and say so."""
    h = mnist_batch[:4].reshape(4, -1)
    gaussian = bottlenecks.Gaussian(latent_dim=3)
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    variables = jax.eval_shape(gaussian.init, rngs, h)  # shapes only: traced, not run
    z, aux = jax.eval_shape(
        lambda v: gaussian.apply(v, h, samples=5, rngs={"noise": jax.random.key(2)}), variables
    )
    assert z.shape == (5, 4, 3) and aux["mu"].shape == (4, 3)
    for other in (bottlenecks.Deterministic(), bottlenecks.WinnerTakeAll()):
        with pytest.raises(ValueError, match="need a gaussian bottleneck"):
            other.apply({}, h, samples=5)


def test_a_deterministic_code_is_the_features_and_owes_no_term(mnist_batch):
    h = mnist_batch[:4].reshape(4, -1)
    z, aux = bottlenecks.Deterministic().apply({}, h)
    np.testing.assert_array_equal(z, h)
    assert aux["terms"] == {}
    np.testing.assert_array_equal(bottlenecks.Deterministic().apply({}, h, method="encode").code, h)


def test_which_bottlenecks_declare_a_normal_prior():
    assert bottlenecks.Gaussian(latent_dim=2).normal_prior
    assert bottlenecks.Deterministic(prior_match="mmd").normal_prior
    assert bottlenecks.Deterministic(prior_match="adversarial").normal_prior
    assert not bottlenecks.Deterministic().normal_prior
    assert not bottlenecks.VectorQuantizer().normal_prior
    assert not bottlenecks.WinnerTakeAll().normal_prior


# --- vector quantisation -----------------------------------------------------------------------


def test_vq_picks_the_nearest_of_a_hand_made_codebook():
    """Four entries and four vectors chosen by hand, each clearly nearest one entry; a code
    whose last axis is no multiple of the entries' size is refused."""
    codebook = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    h = jnp.array([[[0.9, 0.2], [0.1, -0.3]], [[4.0, 6.0], [0.2, 0.8]]])  # 2 images of 2 vectors
    vq = bottlenecks.VectorQuantizer(num_codes=4, code_dim=2)
    variables = {"params": {"codebook": codebook}}
    encoding = vq.apply(variables, h, method="encode")
    np.testing.assert_array_equal(encoding.indices, [[1, 0], [3, 2]])
    np.testing.assert_array_equal(encoding.code, codebook[jnp.array([[1, 0], [3, 2]])])
    np.testing.assert_array_equal(vq.apply(variables, jnp.array([3, 1]), method="vectors"),
                                  codebook[jnp.array([3, 1])])  # fmt: skip
    with pytest.raises(ValueError, match=r"last axis \(3\) is not a multiple of model.code_dim=2"):
        vq.apply(variables, jnp.zeros((1, 3)), method="encode")


def _vq(decay=None):
    """A 5-entry codebook and random features: the quantiser's maths holds for any."""
    vq = bottlenecks.VectorQuantizer(num_codes=5, code_dim=3, ema_decay=decay)
    h = jax.random.normal(jax.random.key(0), (4, 2, 6))  # 16 vectors of 3
    variables = vq.init(jax.random.key(1), h)
    return vq, variables, h


def _nearest(vectors, codebook):
    d2 = ((vectors[:, None] - codebook[None]) ** 2).sum(-1)
    return d2.argmin(1)


def test_vq_quantises_to_the_nearest_entry_and_passes_gradients_straight_through():
    vq, variables, h = _vq()
    codebook = np.asarray(variables["params"]["codebook"])
    z, aux = vq.apply(variables, h)
    vectors = np.asarray(h).reshape(-1, 3)
    idx = _nearest(vectors, codebook)
    np.testing.assert_allclose(np.asarray(z).reshape(-1, 3), codebook[idx], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(aux["indices"]).ravel(), idx)
    # d sum(w * z) / dh = w: the quantiser is the identity backwards.
    w = jax.random.normal(jax.random.key(2), h.shape)
    grad_h = jax.grad(lambda h: jnp.sum(w * vq.apply(variables, h)[0]))(h)
    np.testing.assert_allclose(grad_h, w, rtol=1e-6)
    grad_codebook = jax.grad(lambda v: jnp.sum(w * vq.apply(v, h)[0]))(variables)
    assert not np.any(grad_codebook["params"]["codebook"])  # the codebook learns from its term


def test_vq_commitment_and_codebook_terms_and_where_their_gradients_go():
    vq, variables, h = _vq()
    codebook = np.asarray(variables["params"]["codebook"])
    vectors = np.asarray(h).reshape(-1, 3)
    # per image: summed over its 4 vectors, averaged over the 4 images of h
    distance = np.sum((vectors - codebook[_nearest(vectors, codebook)]) ** 2) / h.shape[0]
    _, aux = vq.apply(variables, h)
    np.testing.assert_allclose(aux["terms"]["commitment"], distance, rtol=1e-5)
    np.testing.assert_allclose(aux["terms"]["codebook"], distance, rtol=1e-5)

    def term(name):
        return lambda v, h: vq.apply(v, h)[1]["terms"][name]

    g_params, g_h = jax.grad(term("commitment"), argnums=(0, 1))(variables, h)
    assert not np.any(g_params["params"]["codebook"]) and np.any(g_h)  # moves the encoder
    g_params, g_h = jax.grad(term("codebook"), argnums=(0, 1))(variables, h)
    assert np.any(g_params["params"]["codebook"]) and not np.any(g_h)  # moves the codebook


def test_ema_codebook_update_follows_the_moving_averages():
    """After one step the counts and sums are the decayed averages with this batch, and the
    codebook (moved by its whole gradient with SGD at rate 1) is sums / smoothed counts."""
    decay, eps = 0.9, 1e-5
    vq, variables, h = _vq(decay)
    e0 = np.asarray(variables["params"]["codebook"])
    np.testing.assert_array_equal(variables["vq_ema"]["counts"], np.ones(5))
    np.testing.assert_array_equal(variables["vq_ema"]["sums"], e0)
    vectors = np.asarray(h).reshape(-1, 3)
    onehot = np.eye(5)[_nearest(vectors, e0)]
    counts = decay * 1.0 + (1 - decay) * onehot.sum(0)
    sums = decay * e0 + (1 - decay) * onehot.T @ vectors
    n = counts.sum()
    target = sums / ((counts + eps) / (n + 5 * eps) * n)[:, None]

    def loss(params, collections):
        (_, aux), updated = vq.apply(
            {"params": params, **collections}, h, train=True, mutable=["vq_ema"]
        )
        return sum(aux["terms"].values()), updated

    params = variables["params"]
    grads, updated = jax.grad(loss, has_aux=True)(params, {"vq_ema": variables["vq_ema"]})
    np.testing.assert_allclose(updated["vq_ema"]["counts"], counts, rtol=1e-6)
    np.testing.assert_allclose(updated["vq_ema"]["sums"], sums, rtol=1e-5, atol=1e-7)
    cfg = fields.base().opt
    tx = make_optimizer(cfg, assigned=("codebook",))
    new_params = optax.apply_updates(params, tx.update(grads, tx.init(params), params)[0])
    np.testing.assert_allclose(new_params["codebook"], target, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_ema_codebook_trains_through_the_train_state_collections(tiny, mnist_batch):
    """The train step hands the state's "vq_ema" collection to the loss and keeps the update;
    the codebook then equals the collection's sums over its smoothed counts."""
    config = tiny("vqvae_ema")
    state = create_state(config, mnist_batch)
    assert set(state.collections) == {"vq_ema"}
    loss_fn = autoencoding.make_loss_fn(factory.build(config.model), config.loss)
    step = jax.jit(make_train_step(loss_fn))
    new, metrics = step(state, mnist_batch, jax.random.key(0))
    counts = np.asarray(new.collections["vq_ema"]["counts"])
    assert not np.allclose(counts, state.collections["vq_ema"]["counts"])
    np.testing.assert_allclose(counts.sum(), 1.0 * 64 * 0.99 + 0.01 * 200 * 49, rtol=1e-5)
    n, eps = counts.sum(), 1e-5
    smoothed = (counts + eps) / (n + 64 * eps) * n
    want = np.asarray(new.collections["vq_ema"]["sums"]) / smoothed[:, None]
    np.testing.assert_allclose(new.params["codebook"], want, rtol=1e-4, atol=1e-6)
    assert {"commitment", "codebook", "perplexity"} <= set(metrics)


def test_a_collapsed_codebook_is_named_with_the_fields_that_fix_it():
    conv = configs.load("conv")
    assert bottlenecks.collapse_warning({"epoch": 1, "train/loss": 0.2}, conv) is None  # no VQ
    assert bottlenecks.collapse_warning({"epoch": 1, "train/perplexity": 2.5}, conv) is None
    warning = bottlenecks.collapse_warning({"epoch": 3, "train/perplexity": 1.0}, conv)
    assert "train/perplexity 1.00 at epoch 3" in warning
    assert "This run has loss.reduction='mean', model.code_activation='relu'" in warning
    assert "--config.loss.reduction=sum --config.model.code_activation=linear" in warning
    assert "loss__reduction='sum', model__code_activation='linear'" in warning
    vqvae = configs.load("vqvae")  # the defaults already: the advice is elsewhere
    warning = bottlenecks.collapse_warning({"epoch": 3, "train/perplexity": 1.0}, vqvae)
    assert "--config" not in warning and "model.codebook='ema'" in warning
    fsq = configs.override(configs.load("fsq"), model__code_activation="relu")  # fsq's own
    warning = bottlenecks.collapse_warning({"epoch": 1, "train/perplexity": 1.5}, fsq)
    assert "the fsq codebook collapsed" in warning and "reduction" not in warning
    assert "--config.model.code_activation=linear" in warning


@pytest.mark.slow
def test_conv_with_a_vq_bottleneck_learns_its_codebook(tmp_path, monkeypatch, capsys):
    """Chosen by override, the VQ bottleneck brings what it needs (bottlenecks.DEFAULTS) into
    `conv`: four epochs of mnist5k use over a quarter of its 64 entries (20.4; with conv's
    per-pixel mean and ReLU code the codebook collapsed to one entry, perplexity 1.0)."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)  # test_loop's job
    run = aejax.fit("conv", model__bottleneck="vq", train__epochs=4, workdir=tmp_path)
    last = run.metrics()[-1]
    assert last["train/perplexity"] > run.config.model.num_codes / 4, last
    assert (run.config.loss.reduction, run.config.model.code_activation) == ("sum", "linear")
    assert "codebook collapsed" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_whose_codebook_collapses_warns_once(tmp_path, monkeypatch, capsys):
    """`conv`'s own per-pixel mean and ReLU code, set explicitly, collapse a VQ codebook (1.2,
    then 1.0): the run says so after its first epoch, and not again."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)
    aejax.fit(
        "conv", model__bottleneck="vq", loss__reduction="mean", model__code_activation="relu",
        train__epochs=2, workdir=tmp_path,
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    warnings = [i for i, line in enumerate(lines) if "codebook collapsed" in line]
    assert len(warnings) == 1 and lines[warnings[0] - 1].startswith("epoch 1/2"), lines
    assert "--config.loss.reduction=sum --config.model.code_activation=linear" in lines[warnings[0]]


# --- matching the prior: MMD, adversarial, total correlation ------------------------------------


def _mmd_numpy(x, y, kernel):
    c = 2.0 * x.shape[1]

    def k(a, b):
        d2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return c / (c + d2) if kernel == "imq" else np.exp(-d2 / c)

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )


@pytest.mark.parametrize("kernel", bottlenecks.MMD_KERNELS)
def test_mmd_matches_a_numpy_reference_and_vanishes_between_alike_samples(kernel):
    """Gaussian samples, as the prior's are: one set from N(0, I), one shifted and scaled."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 6)), rng.normal(1.0, 2.0, size=(40, 6))
    got = bottlenecks.mmd(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), kernel)
    np.testing.assert_allclose(got, _mmd_numpy(x, y, kernel), rtol=1e-5)
    same = bottlenecks.mmd(jnp.asarray(x[:25]), jnp.asarray(x[25:]), kernel)
    assert abs(same) < 0.1 * _mmd_numpy(x, y, kernel)


@pytest.mark.parametrize("kernel", bottlenecks.MMD_KERNELS)
def test_mmd_of_a_sample_with_itself_is_near_zero(kernel):
    """The unbiased estimate of a sample against itself is 2 (mean off-diagonal kernel - mean
    kernel): slightly negative, and near 0 beside two samples that differ. Codes of real digits:
    the first 16 pixels' principal components of 200 mnist5k images."""
    x = sources.load("mnist5k", "test")[0][:200].reshape(200, -1).astype(np.float64)
    centred = x - x.mean(0)
    codes = centred @ np.linalg.svd(centred, full_matrices=False)[2][:16].T
    codes = jnp.asarray(codes / codes.std(), jnp.float32)
    itself = float(bottlenecks.mmd(codes, codes, kernel))
    np.testing.assert_allclose(itself, _mmd_numpy(np.asarray(codes), np.asarray(codes), kernel),
                               rtol=1e-4, atol=1e-7)  # fmt: skip
    assert -0.01 < itself <= 0
    prior = jax.random.normal(jax.random.key(0), codes.shape)
    assert float(bottlenecks.mmd(codes + 2.0, prior, kernel)) > 20 * abs(itself)


@pytest.mark.slow
def test_the_adversarial_step_updates_each_side_with_its_own_optimiser(tiny, mnist_batch):
    """The discriminator's term reaches only its parameters, the encoder's term to fool it
    only the autoencoder's; one update moves each side by its own optimiser (here SGD at
    rates 0.1 and 0.3) along the gradient of its own terms."""
    config = tiny("aae", opt__name="sgd", opt__lr=0.1)
    config.opt.parts.discriminator.name, config.opt.parts.discriminator.lr = "sgd", 0.3
    state = create_state(config, mnist_batch)
    loss_fn = autoencoding.make_loss_fn(factory.build(config.model), config.loss)
    rng = jax.random.key(0)

    def grad_of(term):
        return jax.grad(lambda p: loss_fn(p, mnist_batch, rng, True)[1][term])(state.params)

    def is_zero(tree):
        return all(not np.any(leaf) for leaf in jax.tree.leaves(tree))

    disc, adv = grad_of("discriminator"), grad_of("adversarial")
    assert is_zero({k: v for k, v in disc.items() if k != "discriminator"})
    assert not is_zero(disc["discriminator"])
    assert is_zero(adv["discriminator"]) and not is_zero(adv["encoder"])
    grads = jax.grad(lambda p: loss_fn(p, mnist_batch, rng, True)[0])(state.params)
    new, _ = make_train_step(loss_fn)(state, mnist_batch, rng)
    for group in state.params:
        lr = 0.3 if group == "discriminator" else 0.1
        want = jax.tree.map(lambda p, g, lr=lr: p - lr * g, state.params[group], grads[group])
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(new.params[group]), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)


def test_an_optimiser_part_naming_no_parameter_group_is_refused(tiny, mnist_batch):
    """The adversarial AE's discriminator has its own optimiser part; a part for a group the
    model lacks is refused."""
    config = tiny("aae")
    with config.unlocked():
        config.opt.parts.critic = ml_collections.ConfigDict({"name": "adam", "lr": 1e-3})
    with pytest.raises(ValueError, match=r"opt.parts names \['critic'\]"):
        create_state(config, mnist_batch)


def test_total_correlation_estimate():
    """One posterior repeated M times: q(z) is that factorised gaussian, and the estimator's
    only remainder is its constant (K - 1) log N. Posteriors strung along a diagonal (z_1 and
    z_2 move together over the data) have a larger TC than ones on a grid. Both are built by
    hand: their total correlations are known without a model."""
    mu = jnp.tile(jnp.array([[0.3, -1.0, 2.0]]), (64, 1))
    logvar = jnp.full_like(mu, -0.5)
    z = mu + 0.5 * jax.random.normal(jax.random.key(0), mu.shape)
    total_correlation = jax.jit(bottlenecks.total_correlation, static_argnames="dataset_size")
    for n in (1, 10):
        tc = total_correlation(z, mu, logvar, dataset_size=n)
        np.testing.assert_allclose(tc, 2 * np.log(n), atol=1e-5)
    t = jnp.linspace(-2.0, 2.0, 8)
    diagonal = jnp.stack([jnp.repeat(t, 8), jnp.repeat(t, 8)], axis=1)
    grid = jnp.stack([jnp.repeat(t, 8), jnp.tile(t, 8)], axis=1)
    logvar = jnp.full((64, 2), -3.0)
    noise = 0.2 * jax.random.normal(jax.random.key(1), (64, 2))
    tc_diagonal, tc_grid = (
        total_correlation(m + noise, m, logvar, dataset_size=64)
        for m in (diagonal, grid)
    )
    assert tc_diagonal > tc_grid + 1.0


# --- winner-take-all ------------------------------------------------------------------------------


def test_winner_take_all_keeps_one_winner_per_map_and_a_lifetime_fraction():
    """Uniform random maps: ties have probability zero, so each map has one winner."""
    wta = bottlenecks.WinnerTakeAll(lifetime_rate=0.25, spatial=True)
    h = jax.random.uniform(jax.random.key(0), (8, 3, 3, 5))
    sparse = np.asarray(wta.apply({}, h, method="encode").code)
    assert np.all((sparse > 0).sum(axis=(1, 2)) == 1)  # one winner per image and map
    np.testing.assert_allclose(sparse.max(axis=(1, 2)), np.asarray(h).max(axis=(1, 2)))
    trained, _ = wta.apply({}, h, train=True)
    assert np.all((np.asarray(trained) > 0).sum(axis=(0, 1, 2)) == 2)  # 25% of 8 images per map


def test_infovae_adds_the_mmd_of_the_posterior_samples_to_prior_draws():
    """A gaussian with `mmd_kernel`: its "mmd" term is the MMD between the batch's samples and
    the N(0, I) draws of its next noise key, beside the same KL as without it."""
    h = jax.random.normal(jax.random.key(0), (8, 6))
    plain, info = (bottlenecks.Gaussian(3, mmd_kernel=k) for k in (None, "imq"))
    variables = plain.init(jax.random.key(1), h)
    rngs = {"noise": jax.random.key(2)}
    z, aux = info.apply(variables, h, rngs=rngs)
    _, plain_aux = plain.apply(variables, h, rngs=rngs)
    assert set(aux["terms"]) == {"kl", "mmd"} and set(plain_aux["terms"]) == {"kl"}
    np.testing.assert_allclose(aux["terms"]["kl"], plain_aux["terms"]["kl"])
    draws = info.apply(variables, h, rngs=rngs, method=lambda m, h: (
        m.make_rng("noise"), jax.random.normal(m.make_rng("noise"), (8, 3))
    )[1])  # fmt: skip; the second key drawn, as the bottleneck's second draw
    np.testing.assert_allclose(aux["terms"]["mmd"], bottlenecks.mmd(z, draws, "imq"), rtol=1e-5)
