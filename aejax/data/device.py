"""The training set on the device: each epoch a permutation drawn there, cut into batches of
indices that the compiled steps gather from the stored array.

Images stay as stored (uint8 when 8-bit, a quarter of float32's memory) and are scaled to
[0, 1] where a batch is gathered, so the host only dispatches chunks of indices. The other
batch source, for a training set too big for the device, is `stream.StreamedBatches`.
"""

import jax
import ml_collections

from aejax.training import parallel


def gather(dataset, idx_B):
    """The batch of rows `idx_B` of the on-device `dataset` (every leaf by the same indices)."""
    return jax.tree.map(lambda a: a[idx_B], dataset)


def epoch_batches(rng: jax.Array, n: int, batch_size: int) -> jax.Array:
    """The epoch's shuffled indices as [steps, batch]; the incomplete last batch is dropped."""
    steps = n // batch_size
    return jax.random.permutation(rng, n)[: steps * batch_size].reshape(steps, batch_size)


def as_dataset(config: ml_collections.ConfigDict, images, labels):
    """What the steps gather batches from: the images, or `{"image", "label"}` to classify."""
    if config.loss.objective == "classification":
        return {"image": images, "label": labels}
    return images


class DeviceBatches:
    """The training set on the device: a chunk's inputs are its batches' indices, gathered in the
    compiled step. `stream.StreamedBatches` has the same methods."""

    take = staticmethod(gather)

    def __init__(self, dataset, mesh: jax.sharding.Mesh, epoch_order):
        """`dataset` as `as_dataset` gives it; `epoch_order(e)` epoch e's row indices as
        [steps, batch]."""
        self.dataset = parallel.replicate(dataset, mesh)
        self.mesh, self.epoch_order = mesh, epoch_order
        self._epoch, self._idx = None, None

    def chunk(self, epoch: int, begin: int, end: int) -> jax.Array:
        """The indices of steps `begin` to `end` of `epoch`, [steps, batch], split over the mesh."""
        if epoch != self._epoch:  # each device gathers its own rows
            self._idx = parallel.shard_batch(self.epoch_order(epoch), self.mesh, batch_axis=1)
            self._epoch = epoch
        return self._idx[begin:end]

    def checkpoint_items(self, restoring: bool) -> dict:
        return {}  # the order is a function of (seed, epoch): nothing to save

    def check_restored(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass
