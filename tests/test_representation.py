"""Measures of codes: the probe reads what the code holds, kNN and PCA are exact where they
must be, and activation maximisation finds the known maximum of a linear unit."""

import json

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest

from aejax.data import sources
from aejax.evaluation import representation
from aejax.models import factory
from aejax.training.state import create_state


@pytest.fixture(scope="module")
def mnist5k():
    (train_x, train_y), (test_x, test_y) = (
        sources.load("mnist5k", "train"),
        sources.load("mnist5k", "test"),
    )
    return jnp.asarray(train_x), train_y, jnp.asarray(test_x), test_y


def _probe(model, params, mnist5k):
    train_x, train_y, test_x, test_y = mnist5k
    codes = [representation.encode(model, params, x) for x in (train_x, test_x)]
    return representation.linear_probe(codes[0], train_y, codes[1], test_y)


def test_probe_on_a_random_encoder_scores_far_below_the_trained_one(linear_2d_run, mnist5k):
    config, _, params = linear_2d_run
    model = factory.build(config.model)
    trained = _probe(model, params, mnist5k)
    random = _probe(model, create_state(config, mnist5k[0]).params, mnist5k)
    train_x, train_y, test_x, test_y = mnist5k
    pca_train, pca_test, _ = representation.pca_codes_and_error(train_x, test_x, 2)
    pca = representation.linear_probe(pca_train, train_y, pca_test, test_y)
    # The trained linear AE spans PCA's plane, so its codes classify as well as PCA's (0.45;
    # chance is 0.1); a random plane through the pixels keeps far less of the digit identity.
    assert trained > 0.95 * pca and pca > 0.4, (trained, pca)
    assert random < 0.6 * trained, (random, trained)


def test_knn_finds_each_training_point_itself_and_classifies_pixels_well(mnist5k):
    train_x, train_y, test_x, test_y = mnist5k
    train_flat, test_flat = train_x.reshape(4000, -1), test_x.reshape(1000, -1)
    assert representation.knn_accuracy(train_flat, train_y, train_flat, train_y, k=1) == 1.0
    assert representation.knn_accuracy(train_flat, train_y, test_flat, test_y, k=5) > 0.9


def test_pca_error_falls_with_components_and_vanishes_at_full_rank(mnist5k):
    train_x, _, test_x, _ = mnist5k
    errors = [representation.pca_codes_and_error(train_x, test_x, k)[2] for k in (2, 16, 784)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6


@pytest.mark.parametrize("degrees", [30.0, 1e-3])
def test_principal_angles_of_a_tilted_plane_in_any_basis(degrees):
    # Synthetic on purpose: planes in R^4 built to meet at known angles. The plane of e1, e2
    # against that of e1 and e2 tilted towards e3, given in a skewed basis: angles 0 and the
    # tilt (a thousandth of a degree too); against the plane of e3, e4: both 90.
    e = np.eye(4)
    tilt = np.radians(degrees)
    tilted = np.stack([e[:, 0], np.cos(tilt) * e[:, 1] + np.sin(tilt) * e[:, 2]], axis=1)
    skewed_basis = tilted @ np.array([[3.0, 1.0], [-2.0, 0.5]])
    angles = representation.principal_angles(e[:, :2], skewed_basis)
    np.testing.assert_allclose(angles, [0.0, degrees], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(representation.principal_angles(e[:, :2], e[:, 2:]), [90.0, 90.0])


def test_activation_maximisation_reaches_a_linear_units_maximum_on_the_ball(linear_2d_run):
    config, _, params = linear_2d_run
    model = factory.build(config.model)
    radius = 9.0
    images, history = representation.activation_maximisation(model, params, [0, 1], radius)
    # code_u = w_u . x + b_u, whose maximum over |x| <= r is r |w_u| + b_u.
    layer = params["encoder"]["mlp"]["dense0"]
    optimum = radius * jnp.linalg.norm(layer["kernel"], axis=0) + layer["bias"]
    assert np.all(history[-1] > history[0] + 0.5 * (optimum - history[0]))
    np.testing.assert_allclose(history[-1], optimum, rtol=1e-3)
    assert np.all(jnp.linalg.norm(images.reshape(2, -1), axis=1) <= radius * (1 + 1e-5))


@pytest.mark.parametrize("layer", [None, 0, 1])
def test_top_activating_images_excite_their_unit_more_than_any_other(tiny, mnist5k, layer):
    """A stacked AE at init (784-16-8): the chosen images hold the unit's k largest activations
    over the training set, highest first; a hidden layer's activations are its own ELU layer."""
    config = tiny("stacked", model__encoder_widths=(16, 8))
    model = factory.build(config.model)
    params = create_state(config, mnist5k[0]).params
    images, units = mnist5k[0][:500], [0, 3, 5]
    indices, values = representation.top_activating(model, params, images, units, 4, layer=layer)
    all_NxU = np.asarray(representation.encode(model, params, images, layer=layer))[:, units]
    assert indices.shape == values.shape == (3, 4)
    for u in range(3):
        np.testing.assert_array_equal(values[u], all_NxU[indices[u], u])
        assert np.all(np.diff(values[u]) <= 0)
        others = np.delete(all_NxU[:, u], np.asarray(indices[u]))
        assert values[u, -1] >= others.max()
    if layer == 0:
        dense0 = params["encoder"]["mlp"]["dense0"]
        expected = jax.nn.elu(images.reshape(500, -1) @ dense0["kernel"] + dense0["bias"])
        np.testing.assert_allclose(all_NxU, expected[:, units], rtol=1e-5, atol=1e-6)
    if layer == 1:  # the last hidden layer is the code
        np.testing.assert_array_equal(
            all_NxU, np.asarray(representation.encode(model, params, images))[:, units]
        )


def test_a_layer_that_is_not_an_mlp_hidden_layer_is_refused(linear_2d_run):
    config, _, params = linear_2d_run
    with pytest.raises(ValueError, match="layer=1 names no hidden layer.*widths \\(2,\\)"):
        representation.units_fn(factory.build(config.model), params, layer=1)


def test_evaluate_run_reports_the_measures_and_leaves_figures(linear_2d_run, mnist5k):
    config, workdir, params = linear_2d_run
    result = representation.evaluate_run(factory.build(config.model), params, config, workdir)
    assert json.loads((workdir / "representation.json").read_text()) == result
    assert result["code_size"] == 2
    assert result["linear_probe"] == _probe(factory.build(config.model), params, mnist5k)
    # The linear AE is PCA up to a rotation: the same reconstruction error (within 2%).
    np.testing.assert_allclose(
        result["reconstruction_mse"], result["pca_reconstruction_mse"], rtol=0.02
    )
    figures = ("code_scatter.png", "first_layer.png", "activation_maximisation.png")
    for figure in (*figures, "top_activating.png"):
        assert (workdir / figure).stat().st_size > 1000


def test_scatter_panels_draws_each_code_in_its_own_panel(tmp_path):
    # Synthetic codes, so that each panel holds one known class: its colour must appear in its
    # own panel only (tab10: class 0 blue, class 1 orange; the colour bar is at the far right).
    rng = np.random.default_rng(0)
    panels = [(rng.normal(size=(50, 2)), np.full(50, c), f"class {c}") for c in (0, 1)]
    panels[1] = (rng.normal(size=(50, 3)), *panels[1][1:])  # a wider code: its PCA plane
    representation.scatter_panels(panels, tmp_path / "two.png")
    image = matplotlib.image.imread(tmp_path / "two.png")[..., :3]
    width = image.shape[1]
    left, right = image[:, : int(0.45 * width)], image[:, int(0.5 * width) : int(0.8 * width)]

    def has(region, rgb):
        return np.any(np.all(np.abs(region - np.array(rgb) / 255) < 0.02, axis=-1))

    blue, orange = (31, 119, 180), (255, 127, 14)
    assert has(left, blue) and not has(left, orange)
    assert has(right, orange) and not has(right, blue)
