"""The train state: parameters, optimiser state and a model's mutable collections, made from a
config and restored from a workdir's checkpoints."""

import jax
import ml_collections
from flax import struct
from flax.training import train_state
from jax.sharding import Mesh

from aejax import compiled, random_streams
from aejax.data.dataset import as_float
from aejax.models import factory
from aejax.training import checkpoint, parallel
from aejax.training.optimizers import make_optimizer


class TrainState(train_state.TrainState):
    """flax's TrainState and the model's mutable collections (an EMA codebook's counts)."""

    collections: dict = struct.field(default_factory=dict)


def create_state(
    config: ml_collections.ConfigDict, example_x: jax.Array, mesh: Mesh | None = None
) -> TrainState:
    """Initial parameters (and mutable collections) from the "init" random stream, and the
    optimiser around them. `example_x` are training images: the model's input shape, and
    what parameters that start from the data start from (`factory.init_from_data`).

    On `mesh`, the state is made where it lives (`parallel.state_sharding`): each device
    computes its own share, so a dictionary too big for one device is never whole on one.
    """
    model = factory.build(config.model)
    tx = make_optimizer(config.opt, factory.assigned_groups(config.model))

    def init(example_x):
        init_rng, noise_rng = jax.random.split(random_streams.stream(config.seed, "init"))
        example = as_float(example_x[:1])  # stored uint8 images: scaled as the step scales them
        variables = dict(model.init({"params": init_rng, "noise": noise_rng}, example))
        variables = factory.init_from_data(config.model, variables, example_x, config.seed)
        params = variables.pop("params")
        return TrainState.create(apply_fn=model.apply, params=params, tx=tx, collections=variables)

    if mesh is None:
        return init(example_x)
    sharding = parallel.state_sharding(jax.eval_shape(init, example_x), mesh, model)
    return compiled.jit(init, out_shardings=sharding)(example_x)


def restore_state(mngr, state: TrainState, extra: dict | None = None) -> TrainState | None:
    """`checkpoint.restore_latest` into the structure of `state`. A workdir made before train
    states carried mutable collections holds flax's TrainState: a model without collections
    restores it as that."""
    try:
        return checkpoint.restore_latest(mngr, state, extra)
    except ValueError:
        if state.collections:
            raise
        fields = {k: getattr(state, k) for k in ("step", "apply_fn", "params", "tx", "opt_state")}
        restored = checkpoint.restore_latest(mngr, train_state.TrainState(**fields), extra)
        if restored is None:
            return None
        return state.replace(step=restored.step, params=restored.params, opt_state=restored.opt_state)
