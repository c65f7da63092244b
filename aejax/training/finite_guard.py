"""Divergence: a run whose losses or parameters stop being finite stops, and never saves them.

The train loop checks at the points where it already waits for the device (before each save
and at each epoch's end), so there is no host sync per step: one reduction over the state says
whether it is finite, and the losses of the chunks trained since the last check, read only
then, name the step where the run went wrong.
"""

import jax
import jax.numpy as jnp
import numpy as np

from aejax import compiled


class TrainingDiverged(FloatingPointError):
    """Raised, before anything non-finite is saved, when a loss or a parameter is NaN or inf."""


@compiled.jit
def all_finite(tree) -> jax.Array:
    """True when every floating-point number in `tree` is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def first_bad_step(state, chunks: list[tuple[int, dict]], step: int) -> str | None:
    """Where training went wrong since the last check, in words, or None if all is finite.

    `chunks` are `(first_step, metrics_C)` for each chunk since then; `step` the current one.
    Step s (counted from 1) is the update that makes checkpoint s.
    """
    for first, metrics in jax.device_get(chunks):
        finite_C = np.all([np.isfinite(v) for v in metrics.values()], axis=0)
        if not finite_C.all():
            i = int(np.argmin(finite_C))
            losses = ", ".join(f"{k} {float(v[i])}" for k, v in metrics.items())
            return f"at step {first + i + 1} ({losses})"
    if bool(all_finite((state.params, state.opt_state))):
        return None
    since = chunks[0][0] if chunks else step
    return f"between steps {since + 1} and {step} (its parameters are no longer finite)"


def stop(where: str, last_saved: int | None, checkpoints: str, lr: float) -> TrainingDiverged:
    """The error that ends a diverged run: where, what was kept, and how to go on."""
    lower = f"--config.opt.lr={lr / 10:g}"
    if last_saved is None:
        kept, start = "No checkpoint had been saved yet", "the start"
    else:
        kept = f"The last finite checkpoint, step {last_saved} in {checkpoints}, is kept"
        start, kept = "it", kept + " (nothing after it was saved)"
    return TrainingDiverged(
        f"training diverged {where}. {kept}. To go on from {start} with a lower learning rate, "
        f"rerun the same command with {lower} --resume_changes=opt.lr (from Python: lower "
        "config.opt.lr and pass resume_changes=('opt.lr',) to train_and_evaluate), or start "
        "afresh in a new --workdir."
    )
