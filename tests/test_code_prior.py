"""The learned prior over a VQ-VAE's codes: causal, trained by the one loop on the codes of a
trained VQ-VAE (left frozen), and sampled ancestrally into valid codes and decoded images."""

import jax
import jax.numpy as jnp
import numpy as np
import PIL.Image
import pytest

import aejax
from aejax.data import sources
from aejax.evaluation import generation
from aejax.models import code_prior
from aejax.training import checkpoint, loop, transfer, validate


@pytest.mark.slow
def test_each_codes_logits_depend_only_on_the_codes_before_it():
    """Changing code j leaves the logits at positions 0..j unchanged and moves later ones.
    Causality holds for every input, so random codes (not a VQ-VAE's) test it."""
    prior = code_prior.CausalTransformer(num_codes=8, length=10, embed_dim=16, num_heads=2)
    codes = jax.random.randint(jax.random.key(0), (3, 10), 0, 8)
    params = prior.init(jax.random.key(1), codes)
    logits = prior.apply(params, codes)
    assert logits.shape == (3, 10, 8)
    for j in (0, 4, 9):
        changed = codes.at[:, j].set((codes[:, j] + 3) % 8)
        new = prior.apply(params, changed)
        np.testing.assert_allclose(new[:, : j + 1], logits[:, : j + 1], rtol=0, atol=1e-6)
        if j < 9:
            assert np.abs(new[:, j + 1 :] - logits[:, j + 1 :]).max() > 1e-3, j


@pytest.fixture(scope="module")
def mnist_slice():
    """400 real mnist5k training and 100 test images with labels."""
    (x, y), (x_test, y_test) = (sources.load("mnist5k", split) for split in sources.SPLITS)
    return (x[:400], y[:400]), (x_test[:100], y_test[:100])


@pytest.fixture(scope="module")
def vqvae_and_prior(tmp_path_factory, mnist_slice):
    """A tiny VQ-VAE (16 channels, 64 codes of 16 on its 7x7 map) trained two epochs on the
    slice, then its prior (16 wide, 1 layer) four epochs: (their workdirs, the prior's config)."""
    from conftest import tiny_config

    train_split, test_split = mnist_slice
    vqvae = tiny_config("vqvae", train__batch_size=50, train__chunk=1)
    vqvae_dir, prior_dir = (tmp_path_factory.mktemp(name) for name in ("vqvae", "prior"))
    loop.train_and_evaluate(vqvae, vqvae_dir, train=train_split, test=test_split)
    config = tiny_config("vqvae_prior", train__batch_size=50, train__epochs=4, train__chunk=1)
    config.model.autoencoder = vqvae.model
    config.model.embed_dim, config.model.num_layers, config.model.num_heads = 16, 1, 2
    config.train.init_from = str(vqvae_dir)
    loop.train_and_evaluate(config, prior_dir, train=train_split, test=test_split)
    return vqvae_dir, prior_dir, config


@pytest.mark.slow
def test_the_prior_trains_with_its_loss_falling_and_leaves_the_vqvae_as_it_was(vqvae_and_prior):
    vqvae_dir, prior_dir, _ = vqvae_and_prior
    rows = checkpoint.read_metrics(prior_dir)
    assert rows[0]["train/loss"] < np.log(64) + 0.5  # nats per code: it starts near uniform
    assert rows[-1]["train/loss"] < 0.8 * rows[0]["train/loss"], rows
    assert rows[-1]["test/nll"] < rows[0]["test/nll"], rows
    vqvae, prior = (transfer.load_params(d) for d in (vqvae_dir, prior_dir))
    assert set(prior) == {"autoencoder", "prior"}
    assert set(prior["autoencoder"]) == set(vqvae)  # the decoder too, to decode samples
    frozen, trained = jax.tree.leaves(prior["autoencoder"]), jax.tree.leaves(vqvae)
    for got, want in zip(frozen, trained, strict=True):
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()


def test_samples_are_valid_codes_decoded_into_images(vqvae_and_prior):
    _, prior_dir, _ = vqvae_and_prior
    run = aejax.load_run(prior_dir)
    codes = code_prior.sample_codes(run.model, run.params, jax.random.key(0), 5)
    assert codes.shape == (5, 49) and codes.dtype == jnp.int32
    assert 0 <= int(codes.min()) and int(codes.max()) < 64
    assert len(np.unique(np.asarray(codes))) > 1  # draws, not one code repeated
    images = run.sample(8, seed=1)
    assert images.shape == (8, 28, 28, 1)
    assert 0 <= images.min() and images.max() <= 1
    np.testing.assert_array_equal(images, run.sample(8, seed=1))  # seeded
    with PIL.Image.open(prior_dir / "samples.png") as png:  # 6 rows of 10, under a title
        zoom = generation.ZOOM
        assert png.size == (10 * 28 * zoom, 30 + 6 * 28 * zoom)


def test_decoded_codes_of_images_are_the_vqvaes_reconstructions(vqvae_and_prior, mnist_slice):
    """The prior's codes, looked up and reshaped to the encoder's map, decode as the VQ-VAE
    decodes those images: the raster order of the codes is the map's."""
    _, prior_dir, _ = vqvae_and_prior
    run = aejax.load_run(prior_dir)
    x = jnp.asarray(mnist_slice[1][0][:4], jnp.float32) / 255
    codes = run.model.apply({"params": run.params}, x, method="codes")
    decoded = run.model.apply({"params": run.params}, codes, method="decode")
    vqvae = run.model.autoencoder
    reconstructed, _ = vqvae.apply({"params": run.params["autoencoder"]}, x)
    np.testing.assert_allclose(decoded, reconstructed, rtol=1e-5, atol=1e-5)


def test_a_prior_without_a_vqvae_run_is_refused(tiny):
    config = tiny("vqvae_prior", train__init_from="")
    with pytest.raises(ValueError, match="set train.init_from to that run's workdir"):
        validate.config(config)


def test_drawing_through_the_cache_gives_the_full_passes_logits_and_draws():
    """Each cached step's logits are those of the full causal pass over the codes drawn so far
    (random weights and codes: the identity holds for any), and `sample_codes` draws what
    sampling each position from the full pass's logits would."""
    model = code_prior.TokenPrior(num_codes=8, length=6, embed_dim=16, num_layers=2, num_heads=2)
    x = jax.random.randint(jax.random.key(0), (3, 6), 0, 8).astype(jnp.float32)
    params = model.init(jax.random.key(1), x)["params"]
    rng = jax.random.key(2)
    codes = code_prior.sample_codes(model, params, rng, 3)
    full = model.apply({"params": params}, codes.astype(jnp.float32))[0]
    want = jnp.stack(
        [jax.random.categorical(jax.random.fold_in(rng, i), full[:, i]) for i in range(6)], 1
    )
    np.testing.assert_array_equal(codes, want)
    cached = model.transformer().clone(decode=True)
    empty = jnp.zeros((3, 6), jnp.int32)
    cache = cached.apply({"params": params["prior"]}, empty, mutable=["cache"])[1]["cache"]
    previous = jnp.full((3, 1), 8, jnp.int32)
    for i in range(6):
        logits, updated = cached.apply(
            {"params": params["prior"], "cache": cache}, previous, i, mutable=["cache"]
        )
        np.testing.assert_allclose(logits[:, 0], full[:, i], rtol=1e-5, atol=1e-5)
        cache, previous = updated["cache"], codes[:, i : i + 1]
