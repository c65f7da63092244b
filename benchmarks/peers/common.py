"""What every peer script shares: the command line, the data, aejax's settings and the row.

Each framework trains the model that aejax's shipped config of the same name builds, at that
config's batch size and learning rate, on the same Fashion-MNIST arrays, and writes one JSON row
in the same units, so `benchmarks.peers.compare` can set the rows side by side.
"""

import argparse
import json
import statistics
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from aejax import configs
from aejax.data import sources
from aejax.models import factory

MODELS = ("mlp", "vae", "conv")
DATASET = "fashion_mnist"
IMAGE_SHAPE = (28, 28, 1)
ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}  # optax.adam's defaults, which aejax uses
EVAL_BATCH = 1000  # aejax's train.eval_batch_size


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """`MODEL --epochs E --seed S --out row.json`, the command line of every peer script."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="the row is written here as JSON")
    return parser.parse_args(argv)


def splits() -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's train and test images, float32 [N, 28, 28, 1] in [0, 1], as aejax loads them."""
    return sources.load(DATASET, "train")[0], sources.load(DATASET, "test")[0]


def settings(model: str) -> tuple[int, float]:
    """Batch size and Adam's learning rate of aejax's shipped config `model`."""
    config = configs.load(model)
    if config.opt.name != "adam" or config.opt.lr_boundaries:
        raise ValueError(f"the peers train with constant-rate Adam; config {model!r} does not")
    return config.train.batch_size, config.opt.lr


def aejax_param_count(model: str) -> int:
    """Parameters of the model aejax builds from config `model` for 28x28x1 images."""
    cfg = factory.fit_to_data(configs.load(model).model, IMAGE_SHAPE, None)
    module = factory.build(cfg)

    def init(x):
        rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
        return module.init(rngs, x)["params"]

    shapes = jax.eval_shape(init, jax.ShapeDtypeStruct((1, *IMAGE_SHAPE), jnp.float32))
    return sum(leaf.size for leaf in jax.tree.leaves(shapes))


def check_params(framework: str, model: str, count: int) -> int:
    """`count`, after checking that it is aejax's for the same config."""
    expected = aejax_param_count(model)
    if count != expected:
        raise AssertionError(f"{framework} {model} has {count} parameters, aejax's {expected}")
    return count


def epoch_line(epoch: int, epochs: int, train_loss: float, seconds: float, samples: int) -> str:
    return (
        f"epoch {epoch}/{epochs}  train loss {train_loss:.4f}  "
        f"{samples / seconds:,.0f} samples/s  {seconds:.2f}s"
    )


def row(
    framework: str,
    args: argparse.Namespace,
    *,
    epoch_seconds: list[float],
    samples_per_epoch: int,
    test_loss: float,
    params: int,
    **extra,
) -> dict:
    """The result row. `epoch_seconds` are each epoch's training, evaluation excluded and
    compilation included where it happens; the steady rate is the median over epochs from 2 on
    (None with one epoch), since epoch 1 also warms up."""
    rates = [samples_per_epoch / s for s in epoch_seconds]
    return {
        "framework": framework,
        "model": args.model,
        "seed": args.seed,
        "epochs": args.epochs,
        "epoch_seconds": epoch_seconds,
        "first_epoch_seconds": epoch_seconds[0],
        "samples_per_epoch": samples_per_epoch,
        "samples_per_s": statistics.median(rates[1:]) if len(rates) > 1 else None,
        "test_loss": test_loss,
        "params": params,
        **extra,
    }


def write_row(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result) + "\n")
    rate = result["samples_per_s"]
    steady = "n/a (one epoch)" if rate is None else f"{rate:,.0f} samples/s"
    print(
        f"{result['framework']} {result['model']} seed {result['seed']}: steady {steady}, "
        f"first epoch {result['first_epoch_seconds']:.2f}s, test loss {result['test_loss']:.4f}, "
        f"{result['params']:,} parameters",
        flush=True,
    )
