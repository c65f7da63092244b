"""Classifiers on a code: labelled subsets are the fraction asked, and fine-tuning the encoder
with the labels beats a softmax probe on the same frozen encoder."""

import chex
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


def test_fine_tuning_beats_the_frozen_probe_on_the_same_encoder(linear_2d_run, tmp_path):
    config, workdir, pretrained = linear_2d_run
    runs = {}
    for name, trainable in (("finetune", ()), ("probe", ("head",))):
        classifier = fields.classifier_config(
            config, init_from=workdir, trainable=trainable, epochs=5
        )
        classifier.train.chunk, classifier.train.save_every_steps = 20, 10_000
        runs[name] = loop.train_and_evaluate(classifier, tmp_path / name)
    (finetuned, finetuned_row), (probe, probe_row) = runs["finetune"], runs["probe"]
    # The probe's encoder is the pretrained one, bit for bit; the fine-tuned one has moved.
    chex.assert_trees_all_equal(probe.params["autoencoder"]["encoder"], pretrained["encoder"])
    assert not np.array_equal(
        finetuned.params["autoencoder"]["encoder"]["mlp"]["dense0"]["kernel"],
        pretrained["encoder"]["mlp"]["dense0"]["kernel"],
    )
    # A 2-D code chosen for the labels separates digits far better than PCA's plane does.
    assert finetuned_row["test/accuracy"] > probe_row["test/accuracy"] + 0.1, (
        finetuned_row,
        probe_row,
    )


def test_a_labelled_fraction_is_what_the_classifier_trains_on(linear_2d_run, tmp_path):
    config, _, _ = linear_2d_run
    classifier = fields.classifier_config(config, label_fraction=0.1, epochs=1)  # 400 labels
    classifier.train.batch_size = 50
    loop.train_and_evaluate(classifier, tmp_path)
    assert [r["step"] for r in checkpoint.read_metrics(tmp_path)] == [400 // 50]
