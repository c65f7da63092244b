"""A dictionary's report: firing densities, their histogram, and the splice scores that exist only
for a classifier's code (the end-to-end scores are checked in tests/test_activations.py)."""

import numpy as np

from aejax import configs
from aejax.evaluation import dictionary


def test_density_is_the_fraction_of_vectors_each_latent_fires_on():
    latents = np.array([[0.0, 2.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.5, 0.0], [0.0, 1.0, -1.0]])
    np.testing.assert_array_equal(dictionary.density(latents), [0.25, 1.0, 0.0])


def test_density_histogram_counts_the_dead_apart(tmp_path):
    path = tmp_path / "density.png"
    dictionary.density_histogram(np.array([0.0, 0.0, 0.01, 0.1, 0.5]), path)
    assert path.stat().st_size > 0


def test_vectors_given_as_such_have_no_network_to_splice_into():
    config = configs.override(configs.load("sae_topk"), data__activations="")
    assert dictionary.downstream(None, None, config, np.zeros((2, 3)), np.zeros(2, int)) is None
    assert dictionary.source_images(config) is None
    layer = configs.override(config, data__activations="runs/x", data__layer=0)
    assert dictionary.downstream(None, None, layer, np.zeros((2, 3)), np.zeros(2, int)) is None
