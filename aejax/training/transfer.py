"""Runs that build on other runs: parameters taken from a finished run.

They serve greedy pretraining (each phase starts where the previous one stopped and trains one
pair of layers) and classifiers on a pretrained encoder (fine-tuned, or frozen as a probe: the
frozen part is the optimiser's, `optimizers.freeze_all_but`).
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from aejax.training import checkpoint


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
