"""Stratified labelled subsets: the fraction asked of every class, the same for a seed and
another for another seed, refused when it leaves a class unlabelled, and what a classifier
with `data.label_fraction` trains on."""

import numpy as np
import pytest

from aejax.configs import fields
from aejax.data import sources, subsets
from aejax.training import checkpoint, loop


@pytest.mark.parametrize("fraction", [0.01, 0.1, 1.0])
def test_each_label_fraction_is_the_fraction_asked_of_every_class(fraction):
    _, labels = sources.load("mnist5k", "train")  # 400 of each digit
    keep = subsets.stratified_subset(labels, fraction, seed=0)
    assert len(np.unique(keep)) == len(keep) == round(fraction * 4000)
    np.testing.assert_array_equal(
        np.bincount(labels[keep], minlength=10), [round(fraction * 400)] * 10
    )
    np.testing.assert_array_equal(keep, subsets.stratified_subset(labels, fraction, seed=0))
    if fraction < 1:
        assert not np.array_equal(keep, subsets.stratified_subset(labels, fraction, seed=1))


def test_a_fraction_that_leaves_a_class_without_labels_is_refused():
    _, labels = sources.load("mnist5k", "train")
    with pytest.raises(ValueError, match="leaves class 0 .* with no labelled example"):
        subsets.stratified_subset(labels, 0.001, seed=0)
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"data.label_fraction must be in \(0, 1\]"):
            subsets.stratified_subset(labels, fraction, seed=0)


def test_a_labelled_fraction_is_what_the_classifier_trains_on(linear_2d_run, tmp_path):
    config, _, _ = linear_2d_run
    classifier = fields.classifier_config(config, label_fraction=0.1, epochs=1)  # 400 labels
    classifier.train.batch_size = 50
    loop.train_and_evaluate(classifier, tmp_path)
    assert [r["step"] for r in checkpoint.read_metrics(tmp_path)] == [400 // 50]
