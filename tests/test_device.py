"""The training set on the device: each epoch's batches of indices, gathered in the step."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import load_config

from aejax.data import device
from aejax.training import parallel


def test_an_epoch_is_a_permutation_cut_into_whole_batches():
    idx = np.asarray(device.epoch_batches(jax.random.key(0), 103, 10))
    assert idx.shape == (10, 10)  # the last 3 rows wait for another epoch
    assert len(np.unique(idx)) == 100 and idx.min() >= 0 and idx.max() < 103
    assert not np.array_equal(idx.ravel(), np.sort(idx.ravel()))
    other = np.asarray(device.epoch_batches(jax.random.key(1), 103, 10))
    assert not np.array_equal(idx, other)


def test_a_classifier_gathers_images_and_labels_by_the_same_rows():
    config = load_config("conv_classifier")
    images, labels = jnp.arange(5)[:, None, None, None] * jnp.ones((5, 2, 2, 1)), jnp.arange(5)
    dataset = device.as_dataset(config, images, labels)
    batch = device.gather(dataset, jnp.array([3, 1]))
    np.testing.assert_array_equal(batch["label"], [3, 1])
    np.testing.assert_array_equal(batch["image"][:, 0, 0, 0], [3, 1])
    assert device.as_dataset(load_config("mlp"), images, labels) is images


def test_a_chunks_indices_are_its_steps_of_the_epoch_order_drawn_once_an_epoch():
    orders, drawn = {e: device.epoch_batches(jax.random.key(e), 20, 4) for e in (0, 1)}, []

    def epoch_order(epoch):
        drawn.append(epoch)
        return orders[epoch]

    batches = device.DeviceBatches(jnp.zeros((20, 2, 2, 1)), parallel.make_mesh(), epoch_order)
    np.testing.assert_array_equal(batches.chunk(0, 1, 3), orders[0][1:3])
    np.testing.assert_array_equal(batches.chunk(0, 3, 5), orders[0][3:5])
    np.testing.assert_array_equal(batches.chunk(1, 0, 2), orders[1][0:2])
    assert drawn == [0, 1]
    assert batches.checkpoint_items(restoring=True) == {}  # the order follows from the seed: not saved
