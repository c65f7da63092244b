"""The optimiser a config's `opt` group describes: one for the model, others for the parameter
groups that `opt.parts` names, all applied in one update."""

import functools
from collections.abc import Sequence

import jax
import ml_collections
import optax

OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd, "adamw": optax.adamw}


def optimizer(name: str, lr) -> optax.GradientTransformation:
    """The optimiser `name` (a key of `OPTIMIZERS`) at learning rate `lr`."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr)


def make_optimizer(
    cfg: ml_collections.ConfigDict, assigned: tuple[str, ...] = ()
) -> optax.GradientTransformation:
    """The optimiser `cfg` (the `opt` group) describes. Top-level parameter groups named in
    `cfg.parts` get optimisers of their own, and `assigned` groups (`models.assigned_groups`)
    plain SGD at rate 1; one update applies them all (`optax.partition`)."""
    lr = cfg.lr
    if cfg.lr_boundaries:  # piecewise constant: multiplied by lr_decay at each boundary step
        lr = optax.piecewise_constant_schedule(cfg.lr, {int(b): cfg.lr_decay for b in cfg.lr_boundaries})
    tx = optimizer(cfg.name, lr)
    parts = {group: optimizer(part.name, part.lr) for group, part in cfg.parts.items()}
    parts.update({group: optax.sgd(1.0) for group in assigned})
    if parts:
        tx = optax.partition({"main": tx, **parts}, functools.partial(part_labels, tuple(parts)))
    return freeze_all_but(tx, cfg.trainable) if cfg.trainable else tx


def part_labels(parts: tuple[str, ...], params: dict) -> dict:
    """Each parameter's optimiser: its top-level group's part, or "main"."""
    unknown = sorted(set(parts) - set(params))
    if unknown:
        raise ValueError(
            f"opt.parts names {unknown}, which are no top-level parameter groups of this model; "
            f"its groups are {sorted(params)}"
        )
    return {group: jax.tree.map(lambda _, g=group: g if g in parts else "main", tree) for group, tree in params.items()}


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
