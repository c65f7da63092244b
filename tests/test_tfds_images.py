"""TFDS's own image datasets read without TensorFlow: their images (resized where the dataset's
are too large) and labels, an unknown name answered with the nearest names, and a dataset not
prepared as array_record named with the command that prepares it."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from aejax.data import sources, tfds_images


@pytest.mark.parametrize(
    "name, shape, num_classes", [("cifar10", (32, 32, 3), 10), ("celeb_a", (64, 64, 3), None)]
)
def test_tfds_image_datasets_under_mock_data(name, shape, num_classes):
    """TFDS's cifar10 and celeb_a (218x178, cropped and resized to 64) through as_data_source,
    without TensorFlow; `USE_CODE` because TFDS ships no metadata files for them."""
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        split = sources.dataset(name, "test")
    assert split.images.shape == (6, *shape) and split.images.dtype == np.uint8
    assert split.images.std() > 0
    assert split.num_classes == num_classes
    assert (split.labels is None) == (num_classes is None)


def test_a_chosen_image_size_resizes_and_the_examples_keep_their_order():
    """TFDS's mock examples stand in for CIFAR-10, which is not prepared here: read at 16x16,
    every image is resized, and the examples read in one batch are those read one by one."""
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        split = tfds_images.load_tfds("cifar10", "train", image_size=16)
        source = tfds.builder("cifar10").as_data_source("train")
        examples = tfds_images.read_examples(source, [3, 0])
        one_by_one = [source[3], source[0]]
    assert split.images.shape == (5, 16, 16, 3) and split.labels.shape == (5,)
    for got, want in zip(examples, one_by_one, strict=True):
        np.testing.assert_array_equal(got["image"], want["image"])
        assert got["label"] == want["label"]


def test_an_unknown_name_is_answered_with_the_nearest_names():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cifar1O': .*did you mean 'cifar10'"):
        tfds_images.load_tfds("cifar1O", "train", known=("mnist5k",))
    with pytest.raises(ValueError, match=r"neither aejax's \(mnist5k\) nor TFDS's; Or give"):
        tfds_images.load_tfds("zzzzqqqq", "train", known=("mnist5k",))


def test_a_tfds_dataset_that_is_not_prepared_names_how_to_prepare_it():
    with pytest.raises(RuntimeError, match=r"^TFDS dataset 'cifar10' \(train\) is not prepared as array_record in .*`tfds build cifar10 --file_format=array_record"):
        sources.load("cifar10", "train")
