"""Runs that build on other runs: parameters taken from a finished run, and training a part only.

Both serve greedy pretraining (each phase starts where the previous one stopped and trains one
pair of layers) and classifiers on a pretrained encoder (fine-tuned, or frozen as a probe).
Freezing happens in the optimiser, over the one parameter tree: frozen leaves get zero updates,
so the model, the loss and the train loop are the same as for any run.
"""

from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aejax.training import checkpoint


def _path_name(path) -> str:
    return "/".join(str(getattr(key, "key", key)) for key in path)


def freeze_all_but(
    tx: optax.GradientTransformation, trainable: Sequence[str]
) -> optax.GradientTransformation:
    """`tx` for the parameters under one of the `trainable` paths ("encoder/mlp/dense1"), zero
    updates (and no optimiser state) for every other parameter."""
    trainable = tuple(trainable)

    def labels(params):
        names = [_path_name(path) for path, _ in jax.tree.leaves_with_path(params)]
        for prefix in trainable:
            if not any(n == prefix or n.startswith(prefix + "/") for n in names):
                raise ValueError(
                    f"opt.trainable names {prefix!r}, which is no parameter group of this model; "
                    f"its parameters are {names}"
                )

        def label(path, _):
            name = _path_name(path)
            return (
                "train"
                if any(name == p or name.startswith(p + "/") for p in trainable)
                else "frozen"
            )

        return jax.tree.map_with_path(label, params)

    return optax.partition({"train": tx, "frozen": optax.set_to_zero()}, labels)


def load_params(workdir: str | Path) -> dict:
    """The parameters of the newest checkpoint in `workdir` (read by a manager that never
    saves, so the run is left as it was)."""
    workdir = Path(workdir)
    missing = ValueError(
        f"train.init_from={str(workdir)!r} has no checkpoint; train that run first"
    )
    if not (workdir / "checkpoints").is_dir():
        raise missing
    with checkpoint.manager(workdir, keep=1) as mngr:
        if mngr.latest_step() is None:
            raise missing
        return checkpoint.restore_plain(mngr, mngr.latest_step())["params"]


def take_params(params: dict, workdir: str | Path) -> dict:
    """`params` with every parameter group of the run in `workdir` that this model has.

    The groups are matched at the top (the same model, continued) or, for a model that wraps
    an autoencoder (a classifier), under its `autoencoder` group; groups only the source has,
    such as a decoder under a classifier, are left out. Shapes must agree.
    """
    source = load_params(workdir)
    wraps = "autoencoder" in params and "autoencoder" not in source
    target = params["autoencoder"] if wraps else params
    shared = sorted(set(target) & set(source))
    if not shared:
        raise ValueError(
            f"the run in {workdir} has parameter groups {sorted(source)}, none of which this "
            f"model has ({sorted(target)}): train.init_from must name a run of a matching model"
        )
    for group in shared:
        ours = jax.tree.map(jnp.shape, target[group])
        theirs = jax.tree.map(jnp.shape, source[group])
        if ours != theirs:
            raise ValueError(
                f"parameter group {group!r} of the run in {workdir} has shapes {theirs}, this "
                f"model's are {ours}: the two configs build different architectures"
            )
    # Through numpy: restored arrays are committed to a device, fresh ones are not, and a state
    # mixing both would compile the train chunk a second time.
    taken = {
        **target,
        **{g: jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), source[g]) for g in shared},
    }
    return {**params, "autoencoder": taken} if wraps else taken
