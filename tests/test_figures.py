"""Figures of runs compared: one metric of several runs per epoch on one axes."""

import matplotlib.image
import numpy as np
import pytest

from aejax.evaluation import figures


def _rows(values):
    return [{"epoch": e + 1, "test/accuracy": v} for e, v in enumerate(values)]


def test_metric_curves_draws_every_run_and_refuses_a_missing_metric(tmp_path):
    runs = {"pretrained": _rows([0.5, 0.7, 0.8]), "scratch": _rows([0.3, 0.6])}
    figures.metric_curves(runs, ("test/accuracy",), tmp_path / "accuracy.png")
    image = matplotlib.image.imread(tmp_path / "accuracy.png")[..., :3]
    assert image.shape[:2] == (350, 500)
    for rgb in ((31, 119, 180), (255, 127, 14)):  # matplotlib's first two line colours
        assert np.any(np.all(np.abs(image - np.array(rgb) / 255) < 0.02, axis=-1)), rgb
    runs["no accuracy"] = [{"epoch": 1, "test/loss": 0.1}]
    with pytest.raises(KeyError, match="no accuracy"):
        figures.metric_curves(runs, ("test/accuracy",), tmp_path / "refused.png")
    assert not (tmp_path / "refused.png").exists()


def test_the_loss_curves_of_a_single_epoch_show_its_points(tmp_path):
    # Train and test at one value: both points in the middle of the axes, the legend in a corner.
    figures.loss_curves([{"epoch": 1, "train/loss": 0.3, "test/loss": 0.3}], tmp_path / "curves.png")
    image = matplotlib.image.imread(tmp_path / "curves.png")[..., :3]
    middle = image[110:170, 180:250]  # of 300 x 400 pixels: the axes' centre
    test_colour = np.array((255, 127, 14)) / 255  # matplotlib's second colour
    assert np.sum(np.all(np.abs(middle - test_colour) < 0.02, axis=-1)) > 4
