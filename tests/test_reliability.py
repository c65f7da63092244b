"""A trained run's refusals, each one clear message: codes of the wrong size for its decoder,
and samples drawn from a VQ-VAE, whose codes have no N(0, I) prior to draw them from."""


import numpy as np
import pytest

import aejax
from aejax.data import sources
from aejax.evaluation import figures


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """The runs here serve their refusals; test_figures checks the figures."""
    monkeypatch.setattr(figures, "write_figures", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def digits():
    """400 training and 100 test images of mnist5k, with labels."""
    (x, y), (x_test, y_test) = (sources.load("mnist5k", split) for split in sources.SPLITS)
    return (x[:400], y[:400]), (x_test[:100], y_test[:100])


def test_a_run_refuses_codes_of_the_wrong_size_and_prints_as_one_line(digits, tmp_path):
    (x, _), (x_test, _) = digits
    run = aejax.fit("mlp", train=x[:200], workdir=tmp_path, train__epochs=1, train__batch_size=90,
                    model__encoder_widths=(8,))  # fmt: skip
    with pytest.raises(ValueError, match=r"z has shape \(2, 5\); this run's decoder takes codes \[N, 8\], as run.encode gives them"):
        run.decode(np.zeros((2, 5)))
    assert run.decode(run.encode(x_test[:2])).shape == (2, 28, 28, 1)
    text = repr(run)
    assert text == f"Run({str(tmp_path)!r}: mlp on arrays, {784 * 8 + 8 + 8 * 784 + 784:,} parameters, 1 epochs)"


@pytest.mark.slow
def test_sampling_a_vqvae_points_to_its_prior(tiny, digits, tmp_path):
    (x, _), _ = digits
    run = aejax.fit(tiny("vqvae", train__chunk=1), train=x[:100], workdir=tmp_path, train__epochs=1, train__batch_size=50)
    with pytest.raises(TypeError, match=r"VQ-VAE's codes have no N\(0, I\) prior.*aejax.fit\('vqvae_prior', train__init_from="):
        run.sample(4)
