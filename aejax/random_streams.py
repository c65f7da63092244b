"""A run's named random streams: each use of randomness folds its own number into the key of the run's seed.

The numbers are part of every result: changing one changes every run, and a resumed run
continues exactly because its streams are those it started with. Each stream is folded again
with what varies along it (the step, the epoch, the evaluation batch).
"""

import jax

STREAMS = {
    "init": 0,  # initial parameters and the noise of the first call (`state.create_state`)
    "steps": 1,  # each training step's noise, folded with the step
    "shuffle": 2,  # each epoch's order of the training set, folded with the epoch
    "evaluation": 3,  # the test metrics' noise, folded with the evaluation batch
    "figures": 4,  # the draws the figures show
    "binarize": 5,  # dynamic binarisation of training batches, folded with the step
    "codebook_init": 6,  # the vectors k-means starts a codebook at (`factory.init_from_data`)
}


def stream(seed: int, name: str) -> jax.Array:
    """The key of stream `name` (a key of `STREAMS`) of the run seeded `seed`."""
    return jax.random.fold_in(jax.random.key(seed), STREAMS[name])
