"""Generation figures: prior samples, interpolations, the 2-D manifold and code scatter, written
as PNGs of the expected sizes."""

import functools

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
from conftest import load_config

from aejax.data import sources
from aejax.evaluation import generation
from aejax.models import factory


@functools.cache
def _vae(latent_dim):
    config = load_config("vae2d")
    config.model.encoder_widths, config.model.latent_dim = (16,), latent_dim
    model = factory.build(config.model)
    x = jnp.asarray(sources.load("mnist5k", "test")[0][:16])
    params = model.init({"params": jax.random.key(0), "noise": jax.random.key(1)}, x)["params"]
    return model, params, x


@pytest.mark.slow
def test_grids_have_the_expected_shapes_and_contents():
    model, params, x = _vae(2)
    samples = generation.prior_samples(model, params, jax.random.key(2), 3, 4, 2, "bernoulli")
    assert samples.shape == (3, 4, 28, 28, 1) and np.all((0 < samples) & (samples < 1))
    path = generation.interpolations(model, params, x[:2], x[2:4], 5, "bernoulli")
    assert path.shape == (2, 7, 28, 28, 1)
    np.testing.assert_array_equal(path[:, 0], x[:2])  # the encoded images at either end
    np.testing.assert_array_equal(path[:, -1], x[2:4])
    mu_a = model.apply({"params": params}, x[:2], method="encode").code
    first = jax.nn.sigmoid(model.apply({"params": params}, mu_a, method="decode"))
    np.testing.assert_allclose(path[:, 1], first, rtol=1e-5)  # the path starts at mu(a)
    grid = generation.manifold(model, params, 5, "bernoulli")
    assert grid.shape == (5, 5, 28, 28, 1)
    origin = jax.nn.sigmoid(model.apply({"params": params}, jnp.zeros((1, 2)), method="decode"))
    np.testing.assert_allclose(grid[2, 2], origin[0], rtol=1e-5)  # the middle quantile is z = 0
    assert generation.tile(grid).shape == (5 * 28, 5 * 28)


def test_a_2d_vae_writes_all_figures_pixel_for_pixel(tmp_path):
    model, params, x = _vae(2)
    labels = np.arange(16) % 10
    generation.write_figures(tmp_path, model, params, x, labels, "bernoulli", jax.random.key(3))
    sizes = {
        name: matplotlib.image.imread(tmp_path / f"{name}.png").shape[:2]
        for name in ("samples", "interpolations", "manifold")
    }
    zoom, title = generation.ZOOM, 30
    assert sizes == {
        "samples": (title + 6 * 28 * zoom, 10 * 28 * zoom),
        "interpolations": (title + 8 * 28 * zoom, 12 * 28 * zoom),
        "manifold": (20 * 28, 20 * 28),
    }
    band = matplotlib.image.imread(tmp_path / "samples.png")[:title, ..., 0]
    assert band.min() < 0.5  # the title's letters
    assert (tmp_path / "latent_scatter.png").stat().st_size > 5000


def test_higher_dimensional_latents_get_no_2d_maps(tmp_path):
    model, params, x = _vae(3)
    generation.write_figures(
        tmp_path, model, params, x, np.zeros(16), "bernoulli", jax.random.key(3)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interpolations.png", "samples.png"]


def test_grid_panels_puts_each_grid_side_by_side_pixel_for_pixel(tmp_path):
    # A black grid and a grey one (stand-ins whose pixels are known) under their titles, on a
    # white figure: each grid exactly where it belongs, one pixel per pixel, 10 white between.
    black, grey = np.zeros((2, 3, 28, 28, 1)), np.full((2, 3, 28, 28, 1), 0.5)
    generation.grid_panels([black, grey], ["black", "grey"], tmp_path / "panels.png")
    image = matplotlib.image.imread(tmp_path / "panels.png")[..., 0]
    assert image.shape == (30 + 2 * 28, 3 * 28 + 10 + 3 * 28)  # the title band, the gap
    grids = image[30:]
    np.testing.assert_array_equal(grids[:, :84], 0.0)
    np.testing.assert_array_equal(grids[:, 84:94], 1.0)
    np.testing.assert_allclose(grids[:, 94:], 0.5, atol=1 / 255)
