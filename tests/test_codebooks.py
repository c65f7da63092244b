"""A learnt codebook's care: the rotation trick's forward value and gradient, k-means and the
codebooks it starts, restarts of entries out of use, cosine codebooks, the options refused
where they cannot work, and each option learning in a few steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax import configs, random_streams
from aejax.data import sources
from aejax.data.dataset import as_float
from aejax.models import bottlenecks, codebooks, factory
from aejax.objectives import autoencoding
from aejax.training.state import create_state
from aejax.training.step import make_train_step


def test_rotation_trick_gives_q_and_carries_the_gradient_by_the_scaled_rotation():
    """Forward: q. Backward: d sum(w * z) / dh = (|q| / |h|) R^T w, where
    R = I - 2 r r^T + 2 q^ u^T (u = h / |h|, q^ = q / |q|, r = (u + q^) / |u + q^|) is the
    rotation that takes u to q^ and leaves the rest of space turned about their plane."""
    h, q, w = (jax.random.normal(jax.random.key(i), (6, 5)) for i in range(3))
    z, pullback = jax.vjp(codebooks.rotation_trick, h, q)
    np.testing.assert_array_equal(z, q)
    grad_h, grad_q = pullback(w)
    assert not np.any(grad_q)  # the codebook learns from its own term, as straight through
    for h_D, q_D, w_D, g_D in zip(*map(np.asarray, (h, q, w, grad_h)), strict=True):
        u, q_hat = h_D / np.linalg.norm(h_D), q_D / np.linalg.norm(q_D)
        r = (u + q_hat) / np.linalg.norm(u + q_hat)
        rotation = np.eye(5) - 2 * np.outer(r, r) + 2 * np.outer(q_hat, u)
        np.testing.assert_allclose(rotation @ u, q_hat, atol=1e-6)
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(5), atol=1e-6)
        scale = np.linalg.norm(q_D) / np.linalg.norm(h_D)
        np.testing.assert_allclose(g_D, scale * rotation.T @ w_D, rtol=1e-4, atol=1e-5)


def test_kmeans_finds_the_centres_of_separated_clusters():
    """Three tight clusters around known centres (made up: the answer must be known), 40
    vectors each: the three centroids are the clusters' means. More centroids than vectors
    still gives finite centroids, each at a vector."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    noise = 0.1 * np.asarray(jax.random.normal(jax.random.key(0), (120, 2)))
    vectors = jnp.asarray(np.repeat(centres, 40, axis=0) + noise, jnp.float32)
    found = np.asarray(codebooks.kmeans(jax.random.key(1), vectors, 3))
    means = np.asarray(vectors).reshape(3, 40, 2).mean(axis=1)
    np.testing.assert_allclose(found[np.lexsort(found.T)], means[np.lexsort(means.T)], atol=1e-5)
    few = codebooks.kmeans(jax.random.key(2), vectors[:2], 5)
    assert all(any(np.allclose(c, v) for v in np.asarray(vectors[:2])) for c in np.asarray(few))


def _encodings(config, state, images):
    model = factory.build(config.model)
    variables = {"params": state.params, **state.collections}
    h = model.apply(variables, as_float(images), method=lambda module, x: module.encoder(x))
    return h.reshape(-1, config.model.code_dim)


def _distortion(vectors_NxD, codebook_KxD) -> float:
    chosen = codebook_KxD[codebooks.nearest(vectors_NxD, codebook_KxD)]
    return float(jnp.mean(jnp.sum(jnp.square(vectors_NxD - chosen), axis=-1)))


@pytest.mark.parametrize("name", ["vqvae", "vqvae_ema", "rvq"])
def test_a_kmeans_codebook_starts_at_the_centroids_of_the_first_images_encodings(name):
    """The shipped config with `codebook_init="kmeans"`, on mnist5k: the codebook is k-means
    of the initial encoder's vectors of the first 1,024 training images (a residual one level
    by level), an EMA codebook's sums with it; those vectors lie nearer their entries than
    under the uniform start (vqvae: mean squared distance 0.105 against 0.858)."""
    train_x = sources.load("mnist5k", "train")[0][:2000]
    config = configs.load(name)
    uniform = create_state(config, train_x)
    config.model.codebook_init = "kmeans"
    state = create_state(config, train_x)
    vectors = _encodings(config, state, train_x[: codebooks.KMEANS_IMAGES])
    rng = random_streams.stream(config.seed, "codebook_init")
    codebook = state.params["codebook"]
    for level, entries in enumerate(codebook if name == "rvq" else [codebook]):
        want = codebooks.kmeans(jax.random.fold_in(rng, level), vectors, config.model.num_codes)
        np.testing.assert_allclose(entries, want, rtol=1e-5, atol=1e-6)
        vectors = vectors - entries[codebooks.nearest(vectors, entries)]
    if name == "vqvae_ema":
        np.testing.assert_allclose(state.collections["vq_ema"]["sums"], codebook)
    first = (lambda c: c[0]) if name == "rvq" else (lambda c: c)
    vectors = _encodings(config, state, train_x[: codebooks.KMEANS_IMAGES])
    assert _distortion(vectors, first(codebook)) < 0.5 * _distortion(
        vectors, first(uniform.params["codebook"])
    )


def test_entries_unused_for_their_steps_restart_at_vectors_of_the_batch():
    """An EMA codebook of 5 whose entries 3 and 4 lie far from every vector, restarted after
    2 steps: after step 1 they count one step unused and keep their averages; after step 2
    each has a count of 1 and a sum that is one of the batch's vectors (so the codebook, its
    sum over its count, moves there), and counts from 0 again; the entries in use follow
    their moving averages as before."""
    vq = bottlenecks.VectorQuantizer(num_codes=5, code_dim=3, ema_decay=0.9, dead_code_steps=2)
    h = jax.random.normal(jax.random.key(0), (4, 2, 6))  # 16 vectors of 3
    variables = vq.init(jax.random.key(1), h)
    far = variables["params"]["codebook"].at[3:].set(100.0)
    params, ema = {"codebook": far}, {**variables["vq_ema"], "sums": far}

    def step(ema, rng):
        return vq.apply({"params": params, "vq_ema": ema}, h, train=True, mutable=["vq_ema"],
                        rngs={"noise": rng})[1]["vq_ema"]  # fmt: skip

    once = step(ema, jax.random.key(2))
    np.testing.assert_array_equal(once["unused"][3:], [1, 1])
    np.testing.assert_allclose(once["sums"][3:], 0.9 * far[3:])
    twice = step(once, jax.random.key(3))
    np.testing.assert_array_equal(twice["unused"], np.zeros(5))
    np.testing.assert_array_equal(twice["counts"][3:], [1.0, 1.0])
    vectors = np.asarray(h).reshape(-1, 3)
    for row in np.asarray(twice["sums"][3:]):
        assert np.any(np.all(vectors == row, axis=1)), row
    used = np.asarray(once["counts"][:3]) * 0.9 + 0.1 * np.bincount(
        _nearest_rows(vectors, np.asarray(far)), minlength=5
    )[:3]
    np.testing.assert_allclose(twice["counts"][:3], used, rtol=1e-6)


def _nearest_rows(vectors, codebook):
    return ((vectors[:, None] - codebook[None]) ** 2).sum(-1).argmin(1)


def test_a_cosine_codebook_compares_and_decodes_unit_vectors():
    """Each vector's entry is the one at the smallest angle to it, decoded as a unit vector;
    scaling the features changes nothing."""
    vq = bottlenecks.VectorQuantizer(num_codes=7, code_dim=3, cosine=True)
    h = jax.random.normal(jax.random.key(0), (4, 2, 6))
    variables = vq.init(jax.random.key(1), h)
    z, aux = vq.apply(variables, h)
    entries = np.asarray(variables["params"]["codebook"])
    vectors = np.asarray(h).reshape(-1, 3)
    cosines = (vectors @ entries.T) / np.outer(
        np.linalg.norm(vectors, axis=1), np.linalg.norm(entries, axis=1)
    )
    np.testing.assert_array_equal(np.asarray(aux["indices"]).ravel(), cosines.argmax(1))
    np.testing.assert_allclose(np.linalg.norm(np.asarray(z).reshape(-1, 3), axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(vq.apply(variables, 3.0 * h)[1]["indices"], aux["indices"])


@pytest.mark.parametrize(
    ("name", "overrides", "refusal"),
    [
        ("vqvae", {"model__dead_code_steps": 10}, r"need model.bottleneck='vq' with model.codebook='ema'"),
        ("rvq", {"model__codebook_distance": "cosine"}, r"residuals.*is for model.bottleneck='vq'"),
        ("vqvae", {"model__codebook_init": "random"}, r"unknown model.codebook_init 'random'"),
        ("vqvae", {"model__codebook_gradient": "rotate"}, r"choose one of \('straight_through'"),
    ],
)  # fmt: skip
def test_options_that_cannot_work_are_refused_saying_why(name, overrides, refusal):
    config = configs.override(configs.load(name), **overrides)
    with pytest.raises(ValueError, match=refusal):
        factory.build(config.model)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("vqvae", {"model__codebook_init": "kmeans", "model__codebook_gradient": "rotation"}),
        ("vqvae", {"model__codebook_distance": "cosine"}),
        ("vqvae_ema", {"model__codebook_init": "kmeans", "model__dead_code_steps": 2}),
        ("rvq", {"model__codebook_init": "kmeans", "model__codebook_gradient": "rotation"}),
    ],
)
def test_each_option_lowers_the_loss_in_a_few_steps(tiny, name, overrides):
    """10 Adam steps on 64 mnist5k digits, the config's layers at most 8 wide: the loss falls
    by a tenth and the batch uses more than two codes."""
    x = as_float(sources.load("mnist5k", "train")[0][:64])
    config = tiny(name, max_width=8, model__code_dim=4, **overrides)
    step = jax.jit(make_train_step(autoencoding.make_loss_fn(factory.build(config.model),
                                                             config.loss)))  # fmt: skip
    state = create_state(config, x)
    losses = []
    for i in range(10):
        state, metrics = step(state, x, jax.random.key(i))
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.9 * losses[0], losses
    assert metrics["perplexity"] > 2, metrics

