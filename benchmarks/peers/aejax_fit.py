"""aejax's side of the peer comparison: `aejax.fit` on the arrays the peers train on.

    python -m benchmarks.peers.aejax_fit conv --epochs 2 --seed 0 --out row.json

The run is what a user gets from `aejax.fit(name, train=x, test=x_test, train__epochs=E,
seed=S)`: its checkpoints (every 1,000 steps, so inside an epoch's time only from epoch 3 of the
vae and epoch 4 of mlp and conv on) and its figures after the last epoch. Its `metrics.jsonl`
gives each epoch's training seconds with compilation apart; the row adds the compilation back
into the epoch it happened in, as the peers' clocks count it, and keeps it separately too.
`flop_per_sample` is XLA's cost analysis of one training step, divided by the batch (as
`benchmarks.measure` counts it).
"""

import tempfile

import flax
import jax

import aejax
from aejax import compiled
from aejax.training import parallel, setup
from benchmarks.peers import common


def flop_per_sample(config, x) -> float:
    """FLOP of one training step of the run's config on images `x`, per sample, from XLA's
    cost analysis."""
    run = setup.setup(config, mesh=parallel.make_mesh(1), train=x)
    batch = jax.ShapeDtypeStruct((config.train.batch_size, *x.shape[1:]), x.dtype)
    lowered = compiled.jit(run.train_step).lower(run.state, batch, run.keys["steps"])
    return lowered.compile().cost_analysis()["flops"] / config.train.batch_size


def main(argv: list[str] | None = None) -> None:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    x_train, x_test = common.splits()
    with tempfile.TemporaryDirectory() as workdir:
        run = aejax.fit(
            args.model,
            train=x_train,
            test=x_test,
            workdir=workdir,
            train__epochs=args.epochs,
            seed=args.seed,
        )
        rows = run.metrics()
    params = sum(leaf.size for leaf in jax.tree.leaves(run.params))
    batch_size = run.config.train.batch_size
    result = common.row(
        "aejax",
        args,
        epoch_seconds=[r["epoch_seconds"] + r["compile_seconds"] for r in rows],
        samples_per_epoch=len(x_train) // batch_size * batch_size,
        test_loss=rows[-1]["test/loss"],
        params=common.check_params("aejax", args.model, params),
        compile_seconds=[r["compile_seconds"] for r in rows],
        flop_per_sample=flop_per_sample(run.config, x_train),
        versions={"jax": jax.__version__, "flax": flax.__version__},
    )
    common.write_row(args.out, result)


if __name__ == "__main__":
    main()
