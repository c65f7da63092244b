"""The named random streams: each is the key of the run's seed folded with a fixed number."""

import jax
import numpy as np

from aejax import random_streams

# The numbers every run folds into `jax.random.key(seed)`: changing one changes every result
# and breaks the exact resume of runs already in workdirs.
FOLDED = {"init": 0, "steps": 1, "shuffle": 2, "evaluation": 3, "figures": 4, "binarize": 5,
          "codebook_init": 6}  # fmt: skip


def key_data(key) -> np.ndarray:
    return np.asarray(jax.random.key_data(key))


def test_the_streams_are_the_seeds_key_folded_with_their_fixed_numbers():
    assert random_streams.STREAMS == FOLDED
    for name, number in FOLDED.items():
        want = jax.random.fold_in(jax.random.key(7), number)
        np.testing.assert_array_equal(key_data(random_streams.stream(7, name)), key_data(want))
